"""The ask-run-tell loop: an Optuna study on the storage URL, the baselines enqueued first,
then the sampler's proposals, each run as fresh processes and told back to the study.

Trials are driven by ``Study.optimize`` with an objective that never lets a workload's
failure escape as an error: failures raise ``TrialFailed`` (caught by Optuna, the trial is
FAIL with its reason), pruned runs raise ``TrialPruned``. ``optimize`` also gives heartbeats
and the failing of stale trials left by dead workers.
"""

from __future__ import annotations

import logging
import socket
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from tuner import runner
from tuner.errors import StudyConflictError
from tuner.host import Fingerprint
from tuner.parsers import make_parser
from tuner.progress import Progress
from tuner.settings import Settings, child_base_environment
from tuner.space import BaselineTrial, SearchSpace
from tuner.store import (
    counted_trials,
    live_trials,
    open_storage,
    retry_abandoned,
    this_worker,
    worker_is_dead,
)
from tuner.workload import parser_of, run_timeout, unit_of

logger = logging.getLogger(__name__)

#: Per-run trial attributes, reset when a trial starts (a retried trial inherits the failed
#: one's attributes from Optuna's retry callback).
FRESH_ATTRS: dict[str, Any] = {"samples": [], "runs": [], "reason": "", "approximate": []}


class TrialFailed(Exception):
    """A trial whose workload failed (crash, timeout, no metric). Expected: it is data."""


def make_sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    spec = space.spec.sampler
    if spec.name == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    if spec.name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=spec.seed)
    planned = space.spec.budget.n_trials or 40
    startup = spec.n_startup_trials
    if startup is None:
        # Baselines count as startup trials. Optuna's default of 10 random trials would leave
        # a 12-trial study no model-guided trial at all.
        startup = max(len(space.baselines) + 2, min(10, planned // 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=spec.seed, multivariate=spec.multivariate,
                                          n_startup_trials=startup, constant_liar=True)


def make_pruner(space: SearchSpace) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def _direction(space: SearchSpace) -> Literal["maximize", "minimize"]:
    return space.spec.objective.direction


def open_study(space: SearchSpace, *, storage_url: str, fingerprint: Fingerprint,
               spec_text: str) -> optuna.Study:
    """Create the study, or load it if it exists and measures the same thing on the same kind
    of machine (otherwise ``StudyConflictError``)."""
    storage = open_storage(storage_url)
    name = space.spec.name
    key = space.key()
    try:
        study = optuna.load_study(study_name=name, storage=storage,
                                  sampler=make_sampler(space), pruner=make_pruner(space))
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage,
                                    sampler=make_sampler(space), pruner=make_pruner(space),
                                    direction=_direction(space), load_if_exists=True)
    attrs = study.user_attrs
    if "space_key" in attrs:
        if attrs["space_key"] != key:
            raise StudyConflictError(
                f"study {name!r} already exists with a different workload, objective or knob "
                f"space (stored {attrs.get('space')}, now {space.describe()}); its trials "
                f"would not be comparable. Give the study a new name, or delete the old one "
                f"with `tuner delete {name}`")
        if attrs.get("host_class") != fingerprint.host_class:
            raise StudyConflictError(
                f"study {name!r} was measured on another kind of machine (host class "
                f"{attrs.get('host_class')}, {attrs.get('fingerprint', {}).get('cpu_model')}); "
                f"this one is {fingerprint.host_class} ({fingerprint.cpu_model}). Trials from "
                f"different machines must not be mixed: use a new study name")
    else:
        study.set_user_attr("spec", space.spec.model_dump(mode="json", by_alias=True))
        study.set_user_attr("spec_text", spec_text)
        study.set_user_attr("space", space.describe())
        study.set_user_attr("space_key", key)
        study.set_user_attr("fingerprint", fingerprint.to_dict())
        study.set_user_attr("host_class", fingerprint.host_class)
        study.set_user_attr("unit", unit_of(space.spec.workload))
    return study


def recover_abandoned(study: optuna.Study, hostname: str) -> list[int]:
    """Fail and retry trials left RUNNING by a tuner process on this host that has died."""
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker", {})
        if worker_is_dead(worker, hostname):
            try:
                study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            retry_abandoned(study, trial, f"abandoned: the tuner process (pid "
                                          f"{worker.get('pid')}) died mid-trial; retried")
            recovered.append(trial.number)
    return recovered


def enqueue_baselines(study: optuna.Study, space: SearchSpace) -> list[str]:
    """Enqueue each baseline that has no trial yet (one that ran and failed is a result)."""
    present = {t.user_attrs.get("role") for t in live_trials(study)}
    enqueued: list[str] = []
    for baseline in space.baselines:
        if baseline.name not in present:
            study.enqueue_trial(baseline.params, user_attrs={"role": baseline.name})
            enqueued.append(baseline.name)
    return enqueued


@dataclass
class Objective:
    """Runs one trial: ``repeats`` fresh processes of the same launch."""

    space: SearchSpace
    settings: Settings
    progress: Progress | None = None
    hostname: str = ""

    def __post_init__(self) -> None:
        self.hostname = self.hostname or socket.gethostname()
        self.metric = self.space.spec.objective.metric
        self.base_env = child_base_environment(self.space.controlled_env)
        self.baselines: dict[str, BaselineTrial] = {b.name: b for b in self.space.baselines}

    def __call__(self, trial: Trial) -> float:
        role = str(trial.user_attrs.get("role", "search"))
        values = self.space.suggest(trial)
        baseline = self.baselines.get(role)
        applied = dict(baseline.settings) if baseline else dict(values)
        applied.update(self.space.fixed)
        launch = self.space.launch(applied)
        tid = trial._trial_id
        for key, empty in FRESH_ATTRS.items():
            if key in trial.user_attrs:
                trial.set_user_attr(key, empty)
        trial.set_user_attr("role", role)
        trial.set_user_attr("applied", applied)
        trial.set_user_attr("launch", launch.to_dict())
        trial.set_user_attr("shell", launch.shell_line())
        trial.set_user_attr("worker", this_worker(self.hostname))
        if baseline and baseline.approximate:
            trial.set_user_attr("approximate", baseline.approximate)
        if self.progress:
            self.progress.trial_started(trial.number, role, applied)
        try:
            return self._measure(trial, launch)
        except KeyboardInterrupt:
            frozen = trial.study._storage.get_trial(tid)
            retry_abandoned(trial.study, frozen, "interrupted (Ctrl-C); retried on resume")
            raise

    def _measure(self, trial: Trial, launch: Any) -> float:
        spec = self.space.spec
        samples: list[float] = []
        runs: list[dict[str, Any]] = []
        failure: runner.Outcome | None = None
        reported = False
        step = 0

        def on_reading(reading: Any) -> bool:
            nonlocal step
            if reading.name != self.metric or reading.final:
                return False
            step += 1
            trial.report(reading.value, step)
            return bool(trial.should_prune())

        for _ in range(spec.repeats):
            outcome = runner.run(
                launch, parser=make_parser(parser_of(spec.workload)), metric=self.metric,
                timeout=run_timeout(spec.workload), base_env=self.base_env,
                tail_lines=self.settings.output_tail_lines,
                kill_grace=self.settings.kill_grace_seconds, on_reading=on_reading)
            record = outcome.to_dict()
            if outcome.ok:
                samples.append(outcome.metrics[self.metric])
                record["tail"] = outcome.tail.splitlines()[-5:]
            runs.append(record)
            if outcome.settings is not None and not reported:
                trial.set_user_attr("reported", outcome.settings)
                reported = True
            if not outcome.ok:
                failure = outcome
                break
        trial.set_user_attr("samples", samples)
        trial.set_user_attr("runs", runs)
        if failure is not None:
            trial.set_user_attr("reason", failure.reason)
            if failure.status is runner.Status.PRUNED:
                raise optuna.TrialPruned(failure.reason)
            raise TrialFailed(failure.reason)
        return float(statistics.median(samples))


@dataclass(frozen=True)
class TuneResult:
    study: optuna.Study
    ran: int
    recovered: list[int]


def tune(space: SearchSpace, *, storage_url: str, fingerprint: Fingerprint, spec_text: str,
         settings: Settings, progress: Progress | None = None,
         max_trials: int | None = None) -> TuneResult:
    """Run the study until its budget is used (resuming whatever is stored)."""
    hostname = socket.gethostname()
    study = open_study(space, storage_url=storage_url, fingerprint=fingerprint,
                       spec_text=spec_text)
    recovered = recover_abandoned(study, hostname)
    enqueue_baselines(study, space)
    budget = space.spec.budget
    done = len(counted_trials(study))
    remaining = None if budget.n_trials is None else max(0, budget.n_trials - done)
    if max_trials is not None:
        remaining = max_trials if remaining is None else min(remaining, max_trials)
    if progress is not None:
        best, defaults = _best_and_defaults(study)
        progress.resume(done, best, defaults)
    objective = Objective(space=space, settings=settings, progress=progress, hostname=hostname)

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        if progress is not None:
            progress.trial_finished(trial.number, trial.state.name.lower(), trial.value,
                                    str(trial.user_attrs.get("role", "search")),
                                    str(trial.user_attrs.get("reason", "")))
        if budget.n_trials is not None and len(counted_trials(study)) >= budget.n_trials:
            study.stop()

    ran_before = len(study.get_trials(deepcopy=False))
    if remaining != 0:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study.optimize(objective, n_trials=remaining, timeout=budget.timeout,
                       catch=(TrialFailed,), callbacks=[after_trial], gc_after_trial=False)
    if progress is not None:
        progress.close()
    return TuneResult(study=study, ran=len(study.get_trials(deepcopy=False)) - ran_before,
                      recovered=recovered)


def _best_and_defaults(study: optuna.Study) -> tuple[float | None, float | None]:
    complete = [t for t in live_trials(study) if t.state == TrialState.COMPLETE]
    if not complete:
        return None, None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = (max if maximize else min)(t.value for t in complete if t.value is not None)
    defaults = next((t.value for t in complete if t.user_attrs.get("role") == "defaults"), None)
    return best, defaults
