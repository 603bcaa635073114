"""The FastAPI application: the REST API, the dashboard, optuna-dashboard under /optuna.

``create_app`` wires one ``Service`` (settings, storage). With ``worker`` (embedded mode:
``tuner serve`` without ``--storage``), an in-process worker thread runs the queued studies;
otherwise the API only serves and ``tuner worker`` processes do the work. Every path passes
one authentication layer (``tuner.service.api.auth``) and gets the security headers
(``tuner.service.api.headers``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from tuner.errors import NotFoundError, SpecError, StorageError, StudyConflictError, TunerError
from tuner.host import package_version
from tuner.service.api import (
    AuthMiddleware,
    BodyLimit,
    SecurityHeaders,
    Service,
    UnreadableStudyError,
    start_validator_server,
)
from tuner.service.api.routes import ci, compare, health, studies
from tuner.service.dashboard import PREFIX, OptunaDashboard
from tuner.service.dashboard import views as dashboard
from tuner.settings import Settings
from tuner.store import database as store

logger = logging.getLogger(__name__)


def create_app(*, settings: Settings, storage_url: str, worker: Any = None,
               insecure_local: bool = False) -> FastAPI:
    service = Service(settings=settings,
                      storage=store.open_storage(storage_url, heartbeat=False),
                      insecure_local=insecure_local, worker=worker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before the worker thread exists: starting it takes the secrets out of os.environ
        # for a moment, which must not race a trial's environment being built
        start_validator_server()
        thread = None
        if worker is not None:
            thread = threading.Thread(target=worker.run_forever, name="tuner-worker",
                                      daemon=True)
            thread.start()
            service.worker_thread = thread
        yield
        if worker is not None:
            worker.stop_event.set()
            if thread is not None:
                thread.join(timeout=30)

    app = FastAPI(title="tuner", version=package_version("tuner"), lifespan=lifespan,
                  description="Automated performance tuning of ML workloads on CPUs: submit "
                              "study files, follow the studies, fetch the best settings.")
    app.state.service = service
    app.include_router(health.router)
    app.include_router(studies.router)
    app.include_router(ci.router)
    app.include_router(compare.router)
    app.include_router(dashboard.router)
    app.mount("/ui/static", StaticFiles(directory=str(Path(dashboard.__file__).parent
                                                      / "static")), name="static")
    app.mount(PREFIX, OptunaDashboard(service.storage))
    # every path above (routes, static files, optuna-dashboard) passes these, in order:
    # the headers outermost, so refusals carry them too
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuthMiddleware, service=service)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(SpecError)
    async def invalid(request: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": "the study file does not validate",
            "issues": [{"source": i.source, "line": i.line, "field": i.field,
                        "message": i.message} for i in exc.issues]})

    @app.exception_handler(TunerError)
    async def tuner_error(request: Request, exc: TunerError) -> JSONResponse:
        code = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(
            exc, StudyConflictError | UnreadableStudyError) else 503 if isinstance(
            exc, StorageError) else 400
        return JSONResponse(status_code=code, content={"detail": str(exc)})

    return app
