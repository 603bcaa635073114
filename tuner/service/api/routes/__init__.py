"""The API's routers, one per resource."""

from tuner.service.api.routes import ci, health, studies

__all__ = ["ci", "health", "studies"]
