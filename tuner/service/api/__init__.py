"""The REST API: routers per resource (``routes``), the request and response models
(``schemas``), the study views shared with the dashboard (``views``), one authentication
layer (``auth``) with its dependencies (``deps``), input limits (``limits``), what needs the
admin token (``privilege``) and the security headers (``headers``).

May import: every room below ``service``; never ``service.dashboard`` or ``service.app``."""
