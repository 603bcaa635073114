"""The dashboard's pages, served by the API: the studies, and each study's best knobs,
confirmed speedups, launch line, trial chart, knob importance, inert knobs, failures and
ci history; two studies side by side (``/ui/compare``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import optuna
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tuner.results import comparison_render
from tuner.results.summary import importance, summarize
from tuner.service.api import views
from tuner.service.api.auth import COOKIE, cookie_value, known_token
from tuner.service.api.deps import ReadAccess, ServiceDep, load_study
from tuner.service.api.routes.compare import NAME_PATTERN, comparison_of
from tuner.service.dashboard import chart, ci_chart

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 5


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=302)


@router.get("/ui", response_class=HTMLResponse)
def studies_page(request: Request, service: ServiceDep, _: ReadAccess) -> Response:
    names = sorted(optuna.get_all_study_names(service.storage))
    items = views.items(service.storage, names)
    live = any(i.status in ("queued", "running") for i in items)
    return templates.TemplateResponse(request, "studies.html", {
        "items": items, "refresh": REFRESH_SECONDS if live else None})


@router.get("/ui/studies/{name}", response_class=HTMLResponse)
def study_page(name: str, request: Request, service: ServiceDep, _: ReadAccess) -> Response:
    study = load_study(service, name)
    with views.readable(name):
        summary = summarize(study)
        detail = views.detail(study, summary)
        trials = views.trials(study)
    # knob importance is costly: computed again only when the study's trials changed, and
    # only the latest is kept per study
    key = (len(trials), sum(t.state == "complete" for t in trials))
    cached_key, scores = service.importance.get(name, (None, None))
    if cached_key != key:
        scores = importance(study)
        service.importance[name] = (key, scores)
    baselines = {role: b.value for role, b in detail.baselines.items()}
    svg = chart.render(trials, goal=summary.goal, unit=detail.unit,
                       baselines=baselines, answer=summary.answer,
                       confirmed=summary.confirmed_entries)
    failures = [t for t in trials if t.state in ("fail", "pruned") or t.abandoned]
    history = views.ci_history(study)
    ci_rows = ci_chart.rows(history.history)
    ci = {"rows": ci_rows, "chart": ci_chart.render(ci_rows),
          "pending": ci_chart.queued(history.pending)}
    live = detail.status in ("queued", "running") or bool(ci["pending"])
    return templates.TemplateResponse(request, "study.html", {
        "study": detail, "chart": svg, "importance": scores, "failures": failures,
        "ci": ci, "refresh": REFRESH_SECONDS if live else None})


#: A study name given in the query (``/ui/compare?a=...&b=...``).
STUDY_QUERY = Query(pattern=NAME_PATTERN, max_length=100)


@router.get("/ui/compare", response_class=HTMLResponse)
def compare_page(request: Request, service: ServiceDep, _: ReadAccess,
                 a: Annotated[str | None, STUDY_QUERY] = None,
                 b: Annotated[str | None, STUDY_QUERY] = None) -> Response:
    """Two studies side by side: their bests, knob differences and the paired confirmations
    ``tuner compare`` stored (``tuner.service.api.routes.compare``); without both, the
    form that picks them."""
    names = sorted(optuna.get_all_study_names(service.storage))
    context: dict[str, object] = {"names": names, "a": a, "b": b, "c": None}
    if a is not None and b is not None:
        comparison = comparison_of(service, a, b)
        context.update(
            c=comparison, goal=comparison_render.goal_words(comparison),
            meaning=comparison_render.ratio_meaning(comparison),
            blockers=comparison.blockers(),
            confirmations=[{"record": r, "statement": comparison_render.statement(r, comparison),
                            "verdict": comparison_render.verdict_words(r, comparison),
                            "when": _when(r.get("at"))} for r in reversed(comparison.stored)])
    return templates.TemplateResponse(request, "compare.html", context)


def _when(at: object) -> str:
    if not isinstance(at, int | float):
        return "-"
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@router.get("/ui/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/ui/login", response_class=HTMLResponse)
def login(request: Request, service: ServiceDep, token: Annotated[str, Form()]) -> Response:
    """Check the token, then keep a read cookie for it (an HMAC of the token, not the token:
    the cookie serves reads only; writes take the bearer header)."""
    if not known_token(service.settings, token):
        return templates.TemplateResponse(request, "login.html",
                                          {"error": "That token is not one of this service's."},
                                          status_code=403)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response
