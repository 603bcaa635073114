"""``/studies/{name}/ci``: a study's ``tuner ci`` history (the regression gate's runs after
upgrades of the framework, the kernel or the microcode: what changed, the deployed
settings measured again against the framework defaults, the verdict), and the ci run
queued through the API for a worker (``CI_REQUEST``).

Reads take ``ReadAccess`` like every other GET; the records are read through
``tuner.service.api.views.ci_history``, which the dashboard's study page shares.
``POST /studies/{name}/ci`` queues a ci run for the workers (``tuner.service.worker``): it
takes the write token, and the admin token where the stored study runs code of its
submitter's choosing (as stop, resume and delete do).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict

from tuner.service.api import schemas, views
from tuner.service.api.deps import ReadAccess, ServiceDep, WriteAccess, load_study
from tuner.service.api.routes.studies import NOT_FOUND, Responses, study_to_manage
from tuner.store.attributes import CI_REQUEST

router = APIRouter(prefix="/studies", tags=["ci"])

REFUSED: Responses = {401: {"model": schemas.Error, "description": "reads need a token "
                            "here (protect_reads) and none was given"},
                      403: {"model": schemas.Error, "description": "the token is not one "
                            "of this service's"}}


@router.get("/{name}/ci", response_model=schemas.CiHistory,
            responses={**NOT_FOUND, **REFUSED})
def get_ci(name: str, service: ServiceDep, _: ReadAccess) -> schemas.CiHistory:
    """The study's ``tuner ci`` runs, oldest first (each: environment, what changed, the
    deployed settings' speedup over the framework defaults with its interval, the
    comparisons, the verdict and why), and the ci run queued for a worker, if any."""
    return views.ci_history(load_study(service, name))


class CiAsk(BaseModel):
    """How the queued ci run goes: ``retune`` (auto: when the environment changed or the
    deployed settings lost; always; never) and ``fail_on`` (which verdicts its exit status
    fails on, as ``tuner ci --fail-on``)."""

    model_config = ConfigDict(extra="forbid")
    retune: Literal["auto", "always", "never"] = "auto"
    fail_on: Literal["regressed", "changed", "any"] = "regressed"


@router.post("/{name}/ci", status_code=status.HTTP_202_ACCEPTED,
             response_model=schemas.CiHistory,
             responses={**NOT_FOUND, 401: {"model": schemas.Error},
                        403: {"model": schemas.Error},
                        409: {"model": schemas.Error,
                              "description": "a ci run of this study is already queued"}})
def request_ci(name: str, request: Request, service: ServiceDep, _: WriteAccess,
               ask: Annotated[CiAsk | None, Body()] = None) -> schemas.CiHistory:
    """Queue a ``tuner ci`` run of the study for the workers: the first worker that can fit
    the study on its machine re-measures the deployed settings there, re-tunes when needed
    and adds the verdict to the study's ci history (``GET /studies/{name}/ci``)."""
    study = study_to_manage(name, request, service)
    current = CI_REQUEST.get(study)
    taken_at = (current or {}).get("taken_at")
    stale = isinstance(taken_at, int | float) and (
        time.time() - taken_at > service.settings.claim_timeout)
    if current is not None and "error" not in current and not stale:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"a ci run of study {name!r} is already "
                            + ("running" if "taken_by" in current else "queued"))
    ask = ask or CiAsk()
    CI_REQUEST.put(study, {"retune": ask.retune, "fail_on": ask.fail_on,
                           "submitted_at": time.time()})
    return views.ci_history(study)
