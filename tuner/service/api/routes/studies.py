"""``/studies``: submit, list, inspect, stop, resume and delete studies."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

import optuna
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from tuner.errors import SpecError, SpecIssue
from tuner.host import generic_host
from tuner.results.export import MEDIA_TYPES, ExportUnavailable, export_bytes
from tuner.results.render import best_as
from tuner.results.summary import summarize
from tuner.service.api import schemas, views
from tuner.service.api.deps import (
    ReadAccess,
    Service,
    ServiceDep,
    WriteAccess,
    load_study,
    require_admin,
)
from tuner.service.api.limits import parse_submission
from tuner.service.api.privilege import (
    admin_reasons,
    refused_system_knobs,
    stored_admin_reasons,
)
from tuner.space.workload import unit_of
from tuner.spec.models import StudySpec
from tuner.store.attributes import SPEC, STATUS, SUBMITTED_AT, UNIT, put_spec, set_status

router = APIRouter(prefix="/studies", tags=["studies"])

STUDY_FILE = {
    "required": True,
    "description": "A study file, exactly as `tuner validate` reads it: YAML (one study, a "
                   "list, or `studies: [...]`), or the same as JSON.",
    "content": {
        "application/yaml": {"schema": {"type": "string"}, "example":
                             "name: resnet-quick\nworkload: {builtin: resnet}\n"
                             "knobs: {intra_op: auto, inter_op: [1, 2]}\n"
                             "budget: {n_trials: 12}\n"},
        "application/json": {"schema": {"type": "object"}},
    },
}
Responses = dict[int | str, dict[str, Any]]
INVALID: Responses = {422: {"model": schemas.Invalid, "description": "the study file does not "
                            "validate (each issue names the line and the field)"},
                      413: {"model": schemas.Error, "description": "the body is larger than "
                            "the service's max_body_bytes"},
                      503: {"model": schemas.Error, "description": "busy validating other "
                            "submissions; retry"}}
NOT_FOUND: Responses = {404: {"model": schemas.Error, "description": "no such study"}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=list[schemas.Submitted],
             openapi_extra={"requestBody": STUDY_FILE},
             responses={**INVALID, 409: {"model": schemas.Error,
                                         "description": "a study of that name exists"},
                        401: {"model": schemas.Error}, 403: {"model": schemas.Error}})
async def submit(request: Request, service: ServiceDep,
                 _: WriteAccess) -> list[schemas.Submitted]:
    """Validate a study file and queue its studies for the workers."""
    raw = await request.body()  # at most max_body_bytes (tuner.service.api.limits.BodyLimit)
    host = service.worker.host if service.worker is not None else generic_host()
    loaded = await parse_submission(raw, source="<request>", host=host)
    text = loaded.text
    issues = [SpecIssue(source="<request>", line=None, field=f"{s.name}.storage",
                        message="the service chooses the storage; remove `storage`")
              for s in loaded.studies if s.storage]
    issues += [SpecIssue(source="<request>", line=None, field=path, message=(
        f"this service does not allow system knobs (TUNER_SYSTEM_KNOBS="
        f"{service.settings.system_knobs!r})"))
        for s in loaded.studies for path in refused_system_knobs(s, service.settings)]
    if issues:
        raise SpecError(issues)
    reasons = [r for s in loaded.studies for r in admin_reasons(s)]
    if reasons:
        require_admin(request, service, "; ".join(reasons))
    existing = set(optuna.get_all_study_names(service.storage))
    taken = [s.name for s in loaded.studies if s.name in existing]
    if taken:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"a study named {', '.join(taken)} exists; delete it or rename")
    out = []
    for spec in loaded.studies:
        queue(service.storage, spec, text)
        out.append(schemas.Submitted(name=spec.name, status="queued",
                                     url=str(request.url_for("get_study", name=spec.name))))
    return out


def queue(storage: optuna.storages.BaseStorage, spec: StudySpec, text: str) -> None:
    study = optuna.create_study(study_name=spec.name, storage=storage,
                                direction=spec.objective.direction)
    put_spec(study, spec, text)  # in parts when over 1,000 chars
    UNIT.put(study, unit_of(spec.workload))
    set_status(study, "queued")
    SUBMITTED_AT.put(study, time.time())


@router.get("", response_model=schemas.Page[schemas.StudyItem])
def list_studies(service: ServiceDep, _: ReadAccess,
                 offset: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50,
                 state: Annotated[Literal["queued", "running", "stopped", "done", "failed"]
                                  | None, Query(alias="status")] = None,
                 ) -> schemas.Page[schemas.StudyItem]:
    """Studies with their status, progress, best so far and host class."""
    summaries = optuna.get_all_study_summaries(service.storage, include_best_trial=False)
    names = sorted(s.study_name for s in summaries
                   if state is None or STATUS.get(s) == state)
    page = names[offset:offset + limit]
    return schemas.Page(items=views.items(service.storage, page), total=len(names),
                        offset=offset, limit=limit)


@router.get("/{name}", response_model=schemas.StudyDetail, responses=NOT_FOUND)
def get_study(name: str, service: ServiceDep, _: ReadAccess) -> schemas.StudyDetail:
    """Spec, status, noise floor, baselines, and the best with its confirmed interval."""
    with views.readable(name):
        return views.detail(load_study(service, name))


@router.get("/{name}/trials", response_model=schemas.Page[schemas.Trial],
            responses={**NOT_FOUND, 200: {"content": {
                "text/csv": {}, "application/vnd.apache.parquet": {}},
                "description": "JSON pages of trials; with format=csv, json-rows or parquet "
                               "every run of every trial as one row (`tuner export`)"},
                503: {"model": schemas.Error, "description": "parquet without pyarrow"}})
def list_trials(name: str, service: ServiceDep, _: ReadAccess,
                offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                state: Annotated[Literal["complete", "pruned", "fail", "running", "waiting"]
                                 | None, Query()] = None,
                format: Annotated[Literal["json", "csv", "json-rows", "parquet"], Query()]
                = "json") -> Any:
    """The study's trials in order, optionally only those in one state; or, with
    ``format=csv|json-rows|parquet``, the whole study's runs as rows to download (one row
    per run: the knobs applied, value, state, reason, environment)."""
    if format != "json":
        return _export(service, name, "json" if format == "json-rows" else format)
    with views.readable(name):
        found = views.trials(load_study(service, name))
    trials = [t for t in found
              if state is None or t.state == state]
    return schemas.Page(items=trials[offset:offset + limit], total=len(trials),
                        offset=offset, limit=limit)


def _export(service: Service, name: str, fmt: str) -> Response:
    with views.readable(name):
        study = load_study(service, name)
        try:
            data = export_bytes(study, fmt)
        except ExportUnavailable as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    # a name from a database other tools wrote may hold anything: the file name keeps the
    # characters a header and a file system take as they are
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "study"
    return Response(content=data, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{safe}-runs.{fmt}"'})


@router.get("/{name}/best", response_model=schemas.Best,
            responses={**NOT_FOUND, 409: {"model": schemas.Error, "description": "no trial "
                                          "completed yet"},
                       200: {"content": {"text/plain": {}}, "description":
                             "JSON; or with format=env the export lines, with format=shell "
                             "the launch line"}})
def get_best(name: str, service: ServiceDep, _: ReadAccess,
             format: Literal["json", "env", "shell"] = "json") -> schemas.Best | Response:
    """The recommended settings (the confirmed winner once confirmation ran)."""
    with views.readable(name):
        summary = summarize(load_study(service, name))
        best = views.best_of(summary)
    if best is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"study {name!r} has no completed trial")
    if format == "json":
        return best
    return PlainTextResponse(best_as(summary, format) + "\n")


def study_to_manage(name: str, request: Request, service: ServiceDep) -> optuna.Study:
    """The study ``name``, once the token may manage it: a study that can run code on the
    workers (one that needed the admin token to submit) needs it to stop, resume or delete."""
    study = load_study(service, name)
    reasons = stored_admin_reasons(SPEC.get(study))
    if reasons:
        require_admin(request, service, "; ".join(reasons))
    return study


def _set(study: optuna.Study, to: str, allowed: tuple[str, ...]) -> schemas.StudyItem:
    current = STATUS.get(study)
    if current not in allowed:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"study {study.study_name!r} is {current}; it cannot become {to}")
    set_status(study, to)
    return views.item(study)


@router.post("/{name}/stop", response_model=schemas.StudyItem,
             responses={**NOT_FOUND, 409: {"model": schemas.Error}})
def stop(name: str, request: Request, service: ServiceDep,
         _: WriteAccess) -> schemas.StudyItem:
    """Workers finish the trial they are running and start no other."""
    return _set(study_to_manage(name, request, service), "stopped", ("queued", "running"))


@router.post("/{name}/resume", response_model=schemas.StudyItem,
             responses={**NOT_FOUND, 409: {"model": schemas.Error}})
def resume(name: str, request: Request, service: ServiceDep,
           _: WriteAccess) -> schemas.StudyItem:
    """Queue a stopped (or failed) study again."""
    return _set(study_to_manage(name, request, service), "queued", ("stopped", "failed"))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete(name: str, request: Request, service: ServiceDep, _: WriteAccess) -> Response:
    """Delete the study and its trials; a queued or running study is stopped first, so
    that workers let it go."""
    study = study_to_manage(name, request, service)
    if STATUS.get(study) in ("queued", "running"):
        set_status(study, "stopped", "deleted")
    optuna.delete_study(study_name=name, storage=service.storage)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
