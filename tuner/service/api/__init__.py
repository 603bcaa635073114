"""The REST API: routers per resource (``routes``), the request and response models
(``schemas``), the study views shared with the dashboard (``views``), one authentication
layer (``auth``) with its dependencies (``deps``), input limits (``limits``), what needs the
admin token (``privilege``) and the security headers (``headers``).

May import: every room below ``service``; never ``service.dashboard`` or ``service.app``."""

from tuner.service.api.auth import AuthMiddleware
from tuner.service.api.deps import Service
from tuner.service.api.headers import SecurityHeaders
from tuner.service.api.limits import BodyLimit, start_validator_server
from tuner.service.api.views import UnreadableStudyError

__all__ = [
    "AuthMiddleware",
    "BodyLimit",
    "SecurityHeaders",
    "Service",
    "UnreadableStudyError",
    "start_validator_server",
]
