"""The dashboard served by the API, and optuna-dashboard mounted under /optuna."""
