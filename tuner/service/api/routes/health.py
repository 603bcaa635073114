"""``/healthz``: is the service up, can it reach its study database, is its worker alive."""

from __future__ import annotations

import optuna
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tuner.host import package_version
from tuner.service.api import schemas
from tuner.service.api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=schemas.Health,
            responses={503: {"model": schemas.Health, "description": "the study database is "
                             "unreachable"}})
def healthz(service: ServiceDep) -> schemas.Health | JSONResponse:
    worker = "none (workers run elsewhere)"
    if service.worker is not None:
        thread = service.worker_thread
        worker = "alive" if thread is not None and thread.is_alive() else "stopped"
    try:
        optuna.get_all_study_names(service.storage)
        storage = "ok"
    except Exception as exc:  # any database error means "unhealthy", said plainly
        storage = f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    body = schemas.Health(status="ok" if storage == "ok" else "degraded", storage=storage,
                          worker=worker, version=package_version("tuner"))
    if storage != "ok":
        return JSONResponse(body.model_dump(), status_code=503)
    return body
