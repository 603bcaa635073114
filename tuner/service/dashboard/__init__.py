"""The dashboard: HTML pages of the studies and their answer (``views``, ``chart``), the
ci history of a study (``ci_chart``), and
optuna-dashboard mounted under /optuna (``optuna_mount``). It reads studies through the
API's views (``tuner.service.api``); the API never imports it.

May import: every room below ``service``, and ``service.api``."""

from tuner.service.dashboard import chart, ci_chart, views
from tuner.service.dashboard.optuna_mount import PREFIX, OptunaDashboard

__all__ = ["PREFIX", "OptunaDashboard", "chart", "ci_chart", "views"]
