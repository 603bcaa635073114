"""Stored studies and trials as the API's response models (the dashboard uses them too)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from tuner.errors import TunerError
from tuner.results.render import best_as
from tuner.results.summary import MALFORMED, Summary, summarize, why_unreadable
from tuner.service.api import schemas
from tuner.store.attributes import (
    CI_REQUEST,
    CI_RUNS,
    DUPLICATE_OF,
    HOST_CLASS,
    LOADED,
    REASON,
    ROLE,
    SAMPLES,
    SHELL,
    SPACE,
    SPEC_TEXT,
    applied_of,
    spec_of,
    status_of,
)
from tuner.store.database import abandoned
from tuner.store.values import Loaded

logger = logging.getLogger(__name__)


def _speedup(data: dict[str, Any] | None) -> schemas.Speedup | None:
    return schemas.Speedup(**data) if data else None


def best_of(summary: Summary) -> schemas.Best | None:
    best = summary.best
    if best is None or best.launch is None:
        return None
    return schemas.Best(
        trial=best.number, role=best.role, value=summary.best_value, unit=summary.unit,
        confirmed=summary.confirmed, interval=summary.best_interval, knobs=best.applied,
        speedups={k: schemas.Speedup(**v) for k, v in summary.speedups.items()},
        inert=summary.inert, launch=best_as(summary, "shell"), env=best_as(summary, "env"),
        label=summary.answer.label if summary.answer else "")


def item(study: optuna.Study, summary: Summary | None = None) -> schemas.StudyItem:
    summary = summary or summarize(study)
    attrs = study.user_attrs
    status = status_of(attrs)
    return schemas.StudyItem(
        name=summary.name, workload=summary.workload,
        status="new" if status.state is None else status.state,
        status_reason=status.reason, host_class=HOST_CLASS.get(attrs),
        trials=summary.counted, planned=summary.planned, metric=summary.metric,
        unit=summary.unit, best=summary.best_value, confirmed=summary.confirmed,
        speedup_over_defaults=_speedup(summary.speedups.get("defaults")),
        answer=schemas.Answer(**summary.answer.to_dict()) if summary.answer else None)


class UnreadableStudyError(TunerError):
    """A study whose stored attributes cannot be summarised (the API answers 409)."""


@contextmanager
def readable(name: str) -> Iterator[None]:
    """Turn what a malformed stored attribute raises while study ``name`` is summarised
    into ``UnreadableStudyError``, which names the study and the problem."""
    try:
        yield
    except MALFORMED as exc:
        raise UnreadableStudyError(f"study {name!r} {why_unreadable(exc)}") from exc


def unreadable(name: str, exc: Exception) -> schemas.StudyItem:
    """The list entry of a study that cannot be summarised (an attribute rewritten by hand,
    say): it shows as such instead of failing the whole list."""
    return schemas.StudyItem(
        name=name, workload="?", status="unreadable", status_reason=why_unreadable(exc),
        host_class=None, trials=0, planned=None, metric="", unit="", best=None,
        confirmed=False, speedup_over_defaults=None)


def items(storage: optuna.storages.BaseStorage, names: list[str]) -> list[schemas.StudyItem]:
    """The list entries of the studies ``names``, in that order; one that cannot be
    summarised is listed as ``unreadable`` with the reason."""
    out = []
    for name in names:
        try:
            out.append(item(optuna.load_study(study_name=name, storage=storage)))
        except MALFORMED as exc:
            logger.warning("study %s cannot be summarised: %r", name, exc)
            out.append(unreadable(name, exc))
    return out


def detail(study: optuna.Study, summary: Summary | None = None) -> schemas.StudyDetail:
    summary = summary or summarize(study)
    attrs = study.user_attrs
    spec = spec_of(attrs)
    return schemas.StudyDetail(
        **item(study, summary).model_dump(), description=str(spec.get("description", "")),
        spec=spec, spec_text=SPEC_TEXT.get(attrs), space=SPACE.get(attrs),
        fingerprint=summary.fingerprint, noise=summary.noise or None,
        baselines={role: schemas.Baseline(
            trial=v.number, value=v.value, applied=v.applied,
            libraries=_libraries(v.loaded), build=_build(v.loaded))
            for role, v in summary.baselines.items()},
        best_config=best_of(summary), screening=summary.screening,
        confirmation=summary.confirmation or None, states=summary.states,
        explored=summary.explored, space_size=summary.space_size, samples=summary.samples,
        failed_baselines={role: schemas.FailedBaseline(**f.to_dict())
                          for role, f in summary.failed_baselines.items()},
        baseline_statement=summary.baseline_statement, system_before=summary.system_before)


def _libraries(loaded: Loaded | None) -> list[str] | None:
    return None if loaded is None or loaded.libraries is None else list(loaded.libraries)


def _build(loaded: Loaded | None) -> dict[str, Any] | None:
    return None if loaded is None or loaded.build is None else dict(loaded.build)


def trial(frozen: FrozenTrial, gone: dict[int, str]) -> schemas.Trial:
    attrs = frozen.user_attrs
    loaded = LOADED.get(attrs)
    return schemas.Trial(
        number=frozen.number, state=frozen.state.name.lower(),
        role=ROLE.get(attrs), value=frozen.value, params=frozen.params,
        applied=applied_of(attrs, frozen.params), samples=SAMPLES.get(attrs),
        intervals=[frozen.intermediate_values[k] for k in sorted(frozen.intermediate_values)],
        reason=gone.get(frozen.number) or REASON.get(attrs),
        duplicate_of=DUPLICATE_OF.get(attrs), abandoned=frozen.number in gone,
        launch=SHELL.get(attrs),
        started=frozen.datetime_start.isoformat() if frozen.datetime_start else None,
        finished=frozen.datetime_complete.isoformat() if frozen.datetime_complete else None,
        libraries=_libraries(loaded), build=_build(loaded))


def trials(study: optuna.Study) -> list[schemas.Trial]:
    gone = abandoned(study)
    return [trial(t, gone) for t in study.get_trials(deepcopy=False)]


def ci_history(study: optuna.Study) -> schemas.CiHistory:
    """The study's ``tuner ci`` records as stored, oldest first, and the ci run queued
    through the API. A record that is not a JSON object is left out, a number JSON cannot
    carry (NaN, infinity) becomes null, and an attribute that cannot be read at all counts
    as absent: a malformed history never fails the API or the dashboard."""
    attrs = study.user_attrs
    try:
        records = [finite(r) for r in CI_RUNS.get(attrs) if isinstance(r, dict)]
    except MALFORMED as exc:
        logger.warning("study %s: unreadable ci history: %r", study.study_name, exc)
        records = []
    try:
        pending = CI_REQUEST.get(attrs)
    except MALFORMED:
        pending = None
    return schemas.CiHistory(study=study.study_name, history=records,
                             pending=finite(pending) if isinstance(pending, dict) else None)


def finite(value: Any) -> Any:
    """``value`` (parsed JSON) with every NaN or infinite number replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
