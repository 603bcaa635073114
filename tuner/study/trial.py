"""One trial: its knob values, as many fresh runs as it deserves, and what is stored with it.

* The defaults baseline runs ``noise.runs`` times; the spread of those runs is the study's
  noise floor (stored as the study attribute ``noise``).
* The vendor baseline runs ``repeats.max`` times, or fewer (``repeats.min`` at least) once
  its value is known to within 2% (two noise floors over the square root of its runs).
* A search trial runs at least ``repeats.min`` times and keeps going (up to ``repeats.max``)
  only while its value lies within twice the noise floor of the best so far, or beyond it,
  and is known less well than to 2%: close calls get more samples, clearly worse
  candidates none, and on a machine that varies by at most 1% one run is enough. Its first
  run may be pruned from its per-interval metrics.
* The trial's value is the median (or trimmed mean) of its runs; the runs are stored, and so
  is what the workload's process loaded (``loaded``: its threading and allocator libraries
  and framework build, from the first run that knew them; screening reads the baselines').
"""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from tuner import stats
from tuner.execution.parsers import Reading
from tuner.execution.runner import Decision, Outcome, Status
from tuner.goal import Goal
from tuner.knobs import UNSET
from tuner.space.search_space import BaselineTrial, config_key
from tuner.store import snapshot
from tuner.store.access import Attr
from tuner.store.attributes import (
    APPLIED,
    APPROXIMATE,
    DUPLICATE_OF,
    ECHOED,
    LAUNCH,
    LOADED,
    NOISE,
    REASON,
    REPORTED,
    ROLE,
    RUN_SECONDS,
    RUNS,
    SAMPLES,
    SCREENING,
    SHELL,
    WORKER,
)
from tuner.store.batch import Batch, batched
from tuner.store.database import abandoned, retry_abandoned
from tuner.store.values import Loaded, Noise, Run, Worker
from tuner.study.events import RunEvents, Silent
from tuner.study.measure import Measurer
from tuner.study.sampler import bind_baseline
from tuner.study.sequential import PRECISION_FLOOR

#: Per-run trial attributes, reset when a trial starts (a retried trial is enqueued with its
#: role only, but a trial can also be re-asked after an interrupted start).
FRESH_ATTRS: tuple[tuple[Attr[Any], Any], ...] = (
    (SAMPLES, []), (RUNS, []), (REASON, ""), (APPROXIMATE, []))
DEFAULT_FLOOR = 0.05


class TrialFailed(Exception):
    """A trial whose workload failed (crash, timeout, no metric). Expected: it is data."""


def study_floor(study: optuna.Study) -> float:
    noise = NOISE.get(study)
    return float(noise.floor) if noise and noise.floor is not None else DEFAULT_FLOOR


def inert_knobs(study: optuna.Study) -> dict[str, Any]:
    """Knobs screening found inert, with the value they are left at (the runtime's)."""
    screened = SCREENING.get(study)
    return {name: UNSET for name in (screened.inert if screened else {})}


def known_to_the_margin(samples: list[float], floor: float) -> bool:
    """``n`` runs at a noise floor ``f`` (the runs' CV) put a value within about ``2 f /
    sqrt(n)`` (95%): True once that is within the margin a confirmation calls the same
    (``PRECISION_FLOOR``, 2%). On a quiet machine (``f`` at most 1%) one run is enough."""
    return bool(samples) and 2.0 * floor / math.sqrt(len(samples)) <= PRECISION_FLOOR


def deserves_more(samples: list[float], study: optuna.Study, statistic: stats.Statistic) -> bool:
    """True while a candidate is within twice the noise floor of the best so far (or
    better), where more runs can change which configuration wins, and while its value is
    not yet ``known_to_the_margin``: more runs of it could then only reorder candidates
    within 2% of each other, which the confirmation races anyway and calls the same."""
    try:
        best = snapshot.best_value(study)
    except ValueError:
        return False
    floor = study_floor(study)
    if known_to_the_margin(samples, floor):
        return False
    goal = Goal.of(study.direction)
    estimate = stats.robust(samples, statistic)
    return goal.at_least_as_good(estimate, goal.bound(best, 2.0 * floor))


@dataclass(kw_only=True)
class TrialObjective:
    """The function ``Study.optimize`` calls for each trial: apply the trial's knob values,
    measure them as many times as the trial deserves, store what happened, return the
    trial's value (``TrialFailed`` or ``optuna.TrialPruned`` otherwise)."""

    measurer: Measurer
    events: RunEvents = field(default_factory=Silent)
    hostname: str = ""

    def __post_init__(self) -> None:
        self.space = self.measurer.space
        self.spec = self.space.spec
        self.hostname = self.hostname or socket.gethostname()
        self.baselines: dict[str, BaselineTrial] = {b.name: b for b in self.space.baselines}

    def runs_for(self, role: str) -> tuple[int, int]:
        if role == "defaults":
            return self.spec.noise.runs, self.spec.noise.runs
        return self.spec.repeats.min, self.spec.repeats.max

    def more_runs(self, role: str, samples: list[float], study: optuna.Study) -> bool:
        """Whether a trial that has run ``repeats.min`` times goes on: a search trial while
        it ``deserves_more``; a baseline (the vendor's: the defaults run ``noise.runs``
        times) until its value is ``known_to_the_margin``, however it compares."""
        if role not in self.baselines:
            return deserves_more(samples, study, self.spec.repeats.statistic)
        return not known_to_the_margin(samples, study_floor(study))

    def stable_error(self, study: optuna.Study) -> float:
        setting = self.spec.pruner.stable_error
        if setting != "auto":
            return float(setting)
        return study_floor(study) / 2 if NOISE.present(study) else 0.01

    def __call__(self, trial: Trial) -> float:
        # The study's attributes (the knobs screening left out, the noise floor) and its
        # trial list (the finished twins, the best value the pruner and the repeats compare
        # with) are read once for the trial, by its ask, not again at each interval.
        with snapshot.reading_once(trial.study):
            role, applied = self._start(trial)
            earlier = None if role in self.baselines else self._finished_twin(trial, applied)
            if earlier is not None:
                return self._reuse(trial, earlier)
            try:
                return self._measure(trial, role, applied)
            except KeyboardInterrupt:
                frozen = trial.study._storage.get_trial(trial._trial_id)
                retry_abandoned(trial.study, frozen, "interrupted (Ctrl-C); retried on resume")
                raise

    def _start(self, trial: Trial) -> tuple[str, dict[str, Any]]:
        """The trial's role and knob values, written with its launch in one transaction."""
        role = ROLE.get(trial)
        baseline = self.baselines.get(role)
        if baseline:
            if not bind_baseline(trial):  # only the values it set: the defaults have none
                self.space.suggest(trial)  # enqueued by an older tuner, every value fixed
            applied = dict(baseline.values)
        else:
            inert = inert_knobs(trial.study)  # read anew: another worker may have screened
            values = self.space.suggest(trial, skip=set(inert))
            applied = {**values, **inert}
        applied.update(self.space.fixed)
        launch = self.space.launch(applied)
        with batched(trial) as start:  # one transaction, not one per attribute
            for attribute, empty in FRESH_ATTRS:
                if attribute.present(trial):
                    attribute.put(start, empty)
            ROLE.put(start, role)
            APPLIED.put(start, applied)
            LAUNCH.put(start, launch.to_dict())
            SHELL.put(start, launch.shell_line())
            WORKER.put(start, Worker.here(self.hostname))
            if baseline and baseline.approximate:
                APPROXIMATE.put(start, list(baseline.approximate))
        self.events.trial_started(trial.number, role, applied)
        return role, applied

    @staticmethod
    def _finished_twin(trial: Trial, applied: Mapping[str, Any]) -> FrozenTrial | None:
        """An earlier finished trial of the very same configuration, if any (an abandoned
        trial is no result: its retry must measure)."""
        key = config_key(applied)
        finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        gone = abandoned(trial.study)
        for other in snapshot.trials(trial.study, finished):
            if other.number != trial.number and other.number not in gone \
                    and config_key(APPLIED.get(other)) == key:
                return other
        return None

    @staticmethod
    def _reuse(trial: Trial, earlier: FrozenTrial) -> float:
        """The sampler proposed a configuration already measured: every run costs real
        seconds, so the trial takes the earlier result instead of measuring it again."""
        DUPLICATE_OF.put(trial, earlier.number)
        SAMPLES.put(trial, [])
        if earlier.state == TrialState.COMPLETE and earlier.value is not None:
            return float(earlier.value)
        reason = f"same configuration as trial {earlier.number} ({earlier.state.name.lower()}" \
                 f": {REASON.get(earlier)})"
        REASON.put(trial, reason)
        if earlier.state == TrialState.PRUNED:
            raise optuna.TrialPruned(reason)
        raise TrialFailed(reason)

    def _measure(self, trial: Trial, role: str, applied: Mapping[str, Any]) -> float:
        """The trial's runs; what they found is written in one transaction at the end (also
        when they are interrupted), the intermediate values as each interval arrives."""
        with batched(trial) as found:
            return self._runs(trial, found, role, applied)

    def _runs(self, trial: Trial, found: Batch, role: str, applied: Mapping[str, Any]
              ) -> float:
        low, high = self.runs_for(role)
        statistic = self.spec.repeats.statistic
        samples: list[float] = []
        intervals: list[list[float]] = []
        runs: list[dict[str, Any]] = []
        failure: Outcome | None = None
        echoed: dict[str, str] | None = None
        loaded: Loaded | None = None
        step = 0

        run_values: list[float] = []
        stable = self.stable_error(trial.study)

        def on_reading(reading: Reading) -> Decision:
            nonlocal step
            if reading.name != self.measurer.metric or reading.final:
                return Decision.CONTINUE
            step += 1
            run_values.append(reading.value)
            found.report(reading.value, step)  # written with the batch, one transaction
            if role == "search" and not samples and trial.should_prune():
                return Decision.PRUNE
            if stable and stats.relative_error(run_values) <= stable:
                return Decision.ENOUGH
            return Decision.CONTINUE

        while len(samples) < high:
            run_values.clear()
            outcome = self.measurer.run(applied, on_reading=on_reading)
            record = outcome.to_dict()
            if outcome.ok:
                samples.append(outcome.metrics[self.measurer.metric])
                intervals.append(outcome.intervals.get(self.measurer.metric, []))
                record["tail"] = outcome.tail.splitlines()[-5:]
            runs.append(record)
            if outcome.reported is not None and not REPORTED.present(found):
                REPORTED.put(found, outcome.reported)
            if (outcome.libraries is not None or outcome.build is not None) and (
                    loaded is None or (not loaded.known and outcome.libraries is not None)):
                loaded = Loaded(libraries=outcome.libraries, build=outcome.build)
                LOADED.put(found, loaded)
            if outcome.echoed and outcome.echoed[0] != echoed:
                echoed = outcome.echoed[0]  # the last run's: a failed run shows what went wrong
                ECHOED.put(found, echoed)
            if not outcome.ok:
                failure = outcome
                break
            if len(samples) >= low and not self.more_runs(role, samples, trial.study):
                break
        SAMPLES.put(found, samples)
        RUNS.put(found, [Run.of(run) for run in runs])
        RUN_SECONDS.put(found, sum(run["seconds"] for run in runs))
        if failure is not None:
            REASON.put(found, failure.reason)
            if failure.status is Status.PRUNED:
                raise optuna.TrialPruned(failure.reason)
            raise TrialFailed(failure.reason)
        if role == "defaults":
            floor = stats.noise_floor(samples, intervals)
            warning = stats.noise_warning(floor, limit=self.spec.noise.max_cv)
            NOISE.put(trial.study, Noise.from_dict(
                {**floor.to_dict(), "warning": warning, "trial": trial.number}))
        return stats.robust(samples, statistic)
