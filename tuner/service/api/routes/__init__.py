"""The API's routers, one per resource."""

from tuner.service.api.routes import ci, compare, health, studies

__all__ = ["ci", "compare", "health", "studies"]
