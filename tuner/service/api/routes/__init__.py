"""The API's routers, one per resource."""

from tuner.service.api.routes import health, studies

__all__ = ["health", "studies"]
