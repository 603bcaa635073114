"""The service: the FastAPI application (``app``, its composition root), the REST API
(``api``), the dashboard (``dashboard``, which reads through the API's views and never the
other way round), and the worker that runs queued studies.

May import: every room below it."""

from tuner.service.app import create_app
from tuner.service.worker import Worker

__all__ = ["Worker", "create_app"]
