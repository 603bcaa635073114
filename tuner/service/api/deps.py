"""Dependencies of the API's routes: the service (settings, storage), and the token rules.

The rules themselves live in ``tuner.service.api.auth``, which applies them to every request before
routing; the dependencies here apply the same rules again per route (so a route mounted
elsewhere keeps them) and add the one a route can only decide once it has read the body: a
study that can run code on the workers needs the admin token (``tuner.service.api.privilege``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

import optuna
from fastapi import Depends, HTTPException, Request, status
from optuna.storages import BaseStorage

from tuner.service.api.auth import Credentials, Need, check
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


def _enforce(request: Request, service: Service, need: Need, what: str = "") -> None:
    creds = Credentials.from_headers(request.headers)
    refusal = check(service.settings, need, creds, insecure_local=service.insecure_local)
    if refusal is not None:
        detail = f"{what}: {refusal.detail}" if what else refusal.detail
        raise HTTPException(refusal.status, detail, headers={"WWW-Authenticate": "Bearer"}
                            if refusal.status == 401 else None)


def require_read(request: Request, service: ServiceDep) -> None:
    _enforce(request, service, Need.READ)


def require_write(request: Request, service: ServiceDep) -> None:
    _enforce(request, service, Need.WRITE)


def require_admin(request: Request, service: Service, why: str) -> None:
    """The admin token, as the bearer header, for what ``why`` names (a study that can run
    code on the workers)."""
    _enforce(request, service, Need.ADMIN,
             f"a study that can run code on the workers needs the admin token ({why})")


ReadAccess = Annotated[None, Depends(require_read)]
WriteAccess = Annotated[None, Depends(require_write)]


def load_study(service: Service, name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=service.storage)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no study named {name!r}") from None
