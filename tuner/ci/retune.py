"""The re-tune of a ci run: a short study of the same space on the current environment, in a
study of its own (``NAME.ciK``, K the ci run's number; ``NAME`` itself when the storage has
no study of that name yet), warm-started from the previous one:

* the deployed settings and the previous study's best configurations are enqueued first
  (after the baselines), so the search measures them here before it explores;
* where the space is the same (same space key), the previous study's trials are shown to the
  sampler as prior knowledge (``tuner.ci.prior``), never stored in the new study.

Its confirmation is the gate's final race (``tuner.ci.run``), so the study's own
confirmation is skipped; its candidates are its best distinct configurations."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.ci.prior import WithPrior, prior_trials
from tuner.execution.backend import Backend
from tuner.goal import Goal
from tuner.host import Fingerprint
from tuner.results.publish import publish
from tuner.settings import Settings
from tuner.space.baselines import ROLE_LABELS
from tuner.space.search_space import SearchSpace, config_key
from tuner.spec.models import Budget
from tuner.store.attributes import APPLIED, CONFIRMATION, ROLE, SPACE_KEY, STATUS, set_status
from tuner.store.database import counted_trials, live_trials
from tuner.store.values import Confirmation
from tuner.study.confirmation import compare, ranked_candidates
from tuner.study.events import RunEvents
from tuner.study.interleave import Entry
from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget
from tuner.study.samplers import make_sampler
from tuner.study.trial import study_floor

#: The most previous trials shown to the sampler (spread over the previous study).
PRIOR_LIMIT = 60
#: The longest study name (the study file's rule).
NAME_LIMIT = 100


def retune_name(name: str, run: int, *, home_exists: bool) -> str:
    if not home_exists:
        return name
    suffix = f".ci{run}"
    return name[:NAME_LIMIT - len(suffix)] + suffix


def retune_budget(space: SearchSpace) -> int:
    spec = space.spec
    if spec.ci.retune_trials is not None:
        return spec.ci.retune_trials
    return max(8, (spec.budget.n_trials or 16) // 2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Retune:
    """How to re-tune: the space (renamed, its budget the ci budget), where, on what."""

    space: SearchSpace
    storage_url: str
    fingerprint: Fingerprint
    spec_text: str
    settings: Settings
    backend: Backend | None = None


def retune_space(space: SearchSpace, name: str) -> SearchSpace:
    spec = space.spec.model_copy(update={"name": name, "budget": Budget(
        n_trials=retune_budget(space), timeout=space.spec.budget.timeout)})
    return dataclasses.replace(space, spec=spec)


def run_retune(how: Retune, *, deployed: Mapping[str, Any], source: optuna.Study | None,
               events: RunEvents) -> optuna.Study:
    """Run (or resume) the re-tune study to its budget and return it."""
    sampler = None
    old_defaults = defaults_value(source) if source is not None else None
    if source is not None and SPACE_KEY.get(source) == how.space.key():
        prior = prior_trials(live_trials(source), PRIOR_LIMIT)
        if prior:
            sampler = WithPrior(make_sampler(how.space), prior, old_defaults=old_defaults)
    run = StudyRun(StudyTarget(space=how.space, storage_url=how.storage_url,
                               fingerprint=how.fingerprint, spec_text=how.spec_text),
                   collaborators=Collaborators(settings=how.settings, backend=how.backend,
                                               sampler=sampler),
                   limits=RunLimits(confirm=False, resume_stopped=True), events=events)
    study = run.open()
    try:
        if not any(ROLE.get(t) == "search" for t in live_trials(study)):
            enqueue_warm_start(study, how.space, deployed, source)
        run.baselines()
        run.screening()
        run.search()
        run.finish()
    finally:
        if how.backend is None:
            run.measurer.backend.close()
    return study


def enqueue_warm_start(study: optuna.Study, space: SearchSpace, deployed: Mapping[str, Any],
                       source: optuna.Study | None) -> list[dict[str, Any]]:
    """Enqueue the deployed settings, then the best ``ci.warm_start`` distinct
    configurations of ``source``, each as the params of this space (values this space
    cannot take are left to the sampler). Returns the params enqueued."""
    configs: list[Mapping[str, Any]] = [deployed]
    if source is not None:
        goal = Goal.of(source.direction)
        ranked = ranked_candidates(live_trials(source), goal)
        configs += [APPLIED.get(t) or t.params for t in ranked
                    if t.state == TrialState.COMPLETE][:space.spec.ci.warm_start]
    seen: set[str] = set()
    enqueued = []
    for config in configs:
        params = {d.name: config[d.name] for d in space.dims
                  if d.name in config and d.domain.contains(config[d.name])}
        key = config_key(params)
        if not params or key in seen:
            continue
        seen.add(key)
        study.enqueue_trial(params, skip_if_exists=True)
        enqueued.append(params)
    return enqueued


def defaults_value(study: optuna.Study) -> float | None:
    return next((float(t.value) for t in live_trials(study) if t.state == TrialState.COMPLETE
                 and ROLE.get(t) == "defaults" and t.value is not None), None)


def candidates(study: optuna.Study, *, top: int, exclude: set[str]) -> list[FrozenTrial]:
    """The re-tune's best ``top`` distinct configurations (completed first, then pruned),
    none of them one of ``exclude`` (config keys: the deployed settings, the baselines)."""
    out = []
    seen = set(exclude)
    for trial in ranked_candidates(live_trials(study), Goal.of(study.direction)):
        key = config_key(APPLIED.get(trial) or {})
        if key in seen:
            continue
        seen.add(key)
        out.append(trial)
        if len(out) >= top:
            break
    return out


def record_confirmation(study: optuna.Study, entries: list[Entry], *, level: float,
                        rounds: int) -> None:
    """Keep the gate's final race as the re-tune study's confirmation (the rounds of its
    baselines, its candidates and the deployed settings where they were one of its trials),
    so the study's answer is confirmed like any other study's, then publish it."""
    trials = [t for t in live_trials(study) if t.state == TrialState.COMPLETE]
    roles = {ROLE.get(t): t.number for t in trials if ROLE.get(t) in ROLE_LABELS}
    by_config = {config_key(APPLIED.get(t) or {}): t.number for t in trials
                 if ROLE.get(t) == "search"}
    kept = []
    for entry in entries:
        if entry.label in ROLE_LABELS:
            number, label = roles.get(entry.label), entry.label
        else:
            number = entry.trial if entry.trial is not None else by_config.get(
                config_key(entry.applied))
            label = f"trial {number}"
        if number is None:
            continue
        kept.append(Entry(label=label, applied=entry.applied, trial=number,
                          values=entry.values, reasons=entry.reasons))
    record = compare(kept, floor=study_floor(study), goal=Goal.of(study.direction),
                     level=level)
    record.update(at_trials=len(counted_trials(study)), rounds=rounds)
    CONFIRMATION.put(study, Confirmation.from_dict(record))
    publish(study)
    if STATUS.get(study) == "running":
        set_status(study, "done")
