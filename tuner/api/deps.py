"""Dependencies of the API's routes: the service (settings, storage), and the token rules.

Writes need a bearer token: ``api_token`` submits studies of built-in workloads and
stops, resumes and deletes studies; a study that runs an arbitrary command on the workers
needs ``admin_token``. Reads are open unless ``protect_reads`` is set, then any of the
tokens (or ``read_token``) will do. A service started with ``--insecure-local`` (loopback
only) accepts writes without a token.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

import optuna
from fastapi import Depends, HTTPException, Request, status
from optuna.storages import BaseStorage

from tuner.settings import Settings


@dataclass
class Service:
    settings: Settings
    storage: BaseStorage
    insecure_local: bool = False
    worker: Any = None
    worker_thread: threading.Thread | None = None
    #: knob importance per study, with the trial counts it was computed at
    importance: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get("tuner_token") or None


def _matches(token: str, *expected: str) -> bool:
    return any(e and secrets.compare_digest(token.encode(), e.encode()) for e in expected)


def _deny(token: str | None, what: str) -> HTTPException:
    if token is None:
        return HTTPException(status.HTTP_401_UNAUTHORIZED, f"{what} needs a bearer token",
                             headers={"WWW-Authenticate": "Bearer"})
    return HTTPException(status.HTTP_403_FORBIDDEN, f"this token may not {what}")


def _require(request: Request, service: Service, accepted: tuple[str, ...], what: str, *,
             write: bool = True) -> None:
    s = service.settings
    if write and service.insecure_local and not (s.api_token or s.admin_token):
        return  # --insecure-local without tokens: loopback only, writes need none
    token = presented_token(request)
    if token is None or not _matches(token, *accepted):
        raise _deny(token, what)


def require_read(request: Request, service: ServiceDep) -> None:
    s = service.settings
    if s.protect_reads:
        _require(request, service, (s.read_token, s.api_token, s.admin_token), "read studies",
                 write=False)


def require_write(request: Request, service: ServiceDep) -> None:
    s = service.settings
    _require(request, service, (s.api_token, s.admin_token), "change studies")


def require_admin(request: Request, service: Service) -> None:
    """For a study that runs a command: the admin token (checked once the body is read)."""
    _require(request, service, (service.settings.admin_token,),
             "run a command on the workers (a study that runs a command needs the admin "
             "token)")


ReadAccess = Annotated[None, Depends(require_read)]
WriteAccess = Annotated[None, Depends(require_write)]


def load_study(service: Service, name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=service.storage)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no study named {name!r}") from None
