"""One study run, from start to finish, resumable at every step. ``StudyRun`` owns the loop
(as Optuna's ``_optimize`` and MLOS's ``Scheduler`` do) and has one method per phase:

1. ``open``: open (or resume) the Optuna study on its storage, fail and retry trials left
   running by a dead tuner, enqueue the baselines that have not run (``tuner.study.opening``);
2. ``baselines``: the defaults ``noise.runs`` times (the noise floor), the vendor's;
3. ``screening``: say what the baselines' processes loaded (threading and allocator
   libraries, framework build), then screen the knobs that may be inert and fix those that
   are: by construction when the library that reads a knob was not loaded, else measured
   (``tuner.study.screening``);
4. ``search``: run the sampler's proposals until the budget is used
   (``tuner.study.trial``);
5. ``confirmation``: confirm the top candidates against both baselines
   (``tuner.study.confirmation``), then publish the answer for generic Optuna tools.

``run()`` does them in order. Trials are driven by ``Study.optimize``: a workload's failure
is a FAIL trial with its reason (``TrialFailed`` is caught), a pruned run a PRUNED one, and
optimize keeps heartbeats and fails stale trials of dead workers.

What a run needs comes in a few value objects: ``StudyTarget`` (what to run and where it is
stored), ``RunLimits`` (how far this call may go), ``Collaborators`` (settings, backend,
sampler, study gate, stop request) and an event sink (``tuner.study.events.RunEvents``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from tuner.execution.backend import Backend
from tuner.execution.forkserver import backend_for
from tuner.goal import Goal
from tuner.host import Fingerprint
from tuner.results.publish import publish
from tuner.settings import Settings
from tuner.space.search_space import SearchSpace
from tuner.store.attributes import (
    CONFIRMATION,
    NOISE,
    REASON,
    ROLE,
    STARTED_AT,
    STATUS,
    SYSTEM_BEFORE,
)
from tuner.store.database import counted_trials, live_trials, set_status
from tuner.store.gate import StudyGate
from tuner.store.snapshot import reading_once
from tuner.study import confirmation, screening
from tuner.study.events import RunEvents, Silent
from tuner.study.measure import Measurer
from tuner.study.opening import enqueue_baselines, open_study, recover_abandoned
from tuner.study.trial import TrialFailed, TrialObjective

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StudyTarget:
    """What to run: a study fitted to this host, the storage that holds it, the machine it
    runs on and the study file's text (stored with a new study)."""

    space: SearchSpace
    storage_url: str
    fingerprint: Fingerprint
    spec_text: str = ""


@dataclass(frozen=True, kw_only=True)
class RunLimits:
    """How far this call may go. ``max_trials``: trials it may start (the study's budget
    still applies); ``confirm``: run the confirmation once the search is over; ``jobs``:
    trials at once in threads, which only a replay backend may do (real trials on one
    machine would measure each other); ``started_at`` (epoch seconds): count
    ``budget.timeout`` from the study's start rather than from this call;
    ``resume_stopped``: a study stopped through the API runs again (as when a user runs it
    from the command line); ``recover_local``: fail trials left running by a dead tuner
    process of this host at once (workers rely on heartbeats instead)."""

    max_trials: int | None = None
    confirm: bool = True
    jobs: int = 1
    started_at: float | None = None
    resume_stopped: bool = False
    recover_local: bool = True


@dataclass(frozen=True, kw_only=True)
class Collaborators:
    """Who the run works with. ``backend`` runs each launch (by default the one the study's
    ``launcher`` asks for); ``sampler`` replaces the study file's (benchmarks compare
    samplers); ``gate`` serialises trial claims with other workers; ``should_stop`` is asked
    before each new trial (a worker's SIGTERM, the study stopped through the API)."""

    settings: Settings
    backend: Backend | None = None
    sampler: optuna.samplers.BaseSampler | None = None
    gate: StudyGate | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass(frozen=True)
class RunResult:
    study: optuna.Study
    ran: int
    recovered: list[int]
    confirmation: dict[str, object] | None


class _BudgetReached(Exception):
    """Raised by the gated ask: the study's budget is used (or a stop was requested)."""


@contextlib.contextmanager
def gated_ask(study: optuna.Study, gate: StudyGate,
              may_ask: Callable[[], bool]) -> Iterator[None]:
    """While inside, ``study.ask`` claims a trial slot under the study's lock: the budget is
    counted and the new trial committed while no other worker can do the same, so N workers
    on a budget of N trials start exactly N. (``Study.optimize`` calls ``study.ask``; when
    the budget is used, the gated ask ends optimize's loop.) The study is left as it was."""
    original = study.ask

    def ask(fixed_distributions: Any = None) -> Trial:
        # the budget check, the duplicate check and the sampler read the study once, and
        # the trial starts from that read (tuner.store.snapshot)
        with gate.hold(), reading_once(study, hand_over=True):
            if not may_ask():
                raise _BudgetReached
            return original(fixed_distributions)

    study.ask = ask  # type: ignore[method-assign]
    try:
        yield
    finally:
        del study.ask  # the instance attribute goes; the class's method shows again


class StudyRun:
    """One run of a study: ``run()`` for all of it, or the phases one by one after
    ``open()`` (``baselines``, ``screening``, ``search``, ``confirmation``, ``finish``)."""

    def __init__(self, target: StudyTarget, *, collaborators: Collaborators,
                 limits: RunLimits | None = None, events: RunEvents | None = None) -> None:
        self.target = target
        self.space = target.space
        self.limits = limits or RunLimits()
        self.with_ = collaborators
        self.events: RunEvents = events or Silent()
        self.goal = Goal.of(self.space.spec.objective.direction)
        self.hostname = socket.gethostname()
        self.gate = collaborators.gate or StudyGate("memory", self.space.spec.name)
        started_at = self.limits.started_at
        self.started = time.monotonic() - (time.time() - started_at if started_at else 0.0)
        #: trials this call may still start (None: as many as the budget allows)
        self.allowance = self.limits.max_trials
        self._left_at_ask: int | None = None
        self.recovered: list[int] = []
        self._study: optuna.Study | None = None
        self._measurer: Measurer | None = None

    # -- the phases -------------------------------------------------------------------

    def run(self) -> RunResult:
        """Every phase in order; the backend is closed at the end whatever happens."""
        study = self.open()
        ran_before = len(study.get_trials(deepcopy=False))
        confirmed = None
        try:
            best, defaults = self._best_and_defaults()
            self.events.resume(len(counted_trials(study)), best, defaults)
            self.baselines()
            self.screening()
            self.search()
            confirmed = self.confirmation()
            self.finish()
        finally:
            self.events.close()
            self.measurer.backend.close()
        return RunResult(study=study, ran=len(study.get_trials(deepcopy=False)) - ran_before,
                         recovered=self.recovered, confirmation=confirmed)

    def open(self) -> optuna.Study:
        """Open or resume the study, mark it running, recover what a dead tuner left and
        enqueue the baselines that have not run."""
        target = self.target
        with self.gate.hold():  # check-and-set of the study's identity: one worker at a time
            study = open_study(self.space, storage_url=target.storage_url,
                               fingerprint=target.fingerprint, spec_text=target.spec_text,
                               sampler=self.with_.sampler)
        self._study = study
        status = STATUS.get(study)
        if status in (None, "queued") or (self.limits.resume_stopped and status == "stopped"):
            set_status(study, "running")
            if not STARTED_AT.present(study):
                STARTED_AT.put(study, time.time())
        if self.space.system_knobs and not SYSTEM_BEFORE.present(study):
            SYSTEM_BEFORE.put(study, self.space.system_now())
        if self.limits.recover_local:
            self.recovered = recover_abandoned(study, self.hostname)
        with self.gate.hold():
            enqueue_baselines(study, self.space)
        return study

    def baselines(self) -> None:
        """Run the enqueued baselines that have not run (the first trials of a study)."""
        names = {b.name for b in self.space.baselines}
        waiting = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                   if ROLE.get(t) in names]
        left = self.remaining()
        self._optimize(len(waiting) if left is None else min(len(waiting), left))

    def screening(self) -> None:
        """Screen the knobs that may be inert, once the noise floor is known."""
        noise = NOISE.get(self.study)
        if not noise or self.remaining() == 0 or self.stopping():
            return
        if noise.warning:
            self.events.note("warning: " + noise.warning)
        loads = screening.baseline_loads(self.study, self.space) or []
        if any(load.loaded.known or load.loaded.build for load in loads):
            self.events.note("baselines loaded: " + " | ".join(load.line for load in loads))
        screening.screen(self.study, self.measurer, gate=self.gate, say=self.events.note)

    def search(self) -> None:
        """The sampler's proposals until the budget (or this call's allowance) is used."""
        self._optimize(self.remaining())

    def confirmation(self) -> dict[str, Any] | None:
        """Confirm the top candidates once the search is over (and confirmation is on)."""
        if not (self.limits.confirm and self.search_over()):
            return None
        return confirmation.confirm(self.study, self.measurer, gate=self.gate,
                                    say=self.events.note)

    def finish(self) -> None:
        """Publish the answer once the search is over; the study is ``done`` when its
        confirmation is complete too."""
        if not self.search_over():
            return
        study = self.study
        publish(study)
        complete = (self.space.spec.confirm.top == 0 or not self.limits.confirm
                    or CONFIRMATION.present(study))
        if complete and STATUS.get(study) == "running":
            set_status(study, "done")

    # -- state ------------------------------------------------------------------------

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            raise RuntimeError("StudyRun.open() has not been called")
        return self._study

    @property
    def measurer(self) -> Measurer:
        if self._measurer is None:
            backend = self.with_.backend or backend_for(self.space.spec.launcher)
            self._measurer = Measurer(self.space, self.with_.settings, backend)
        return self._measurer

    def remaining(self) -> int | None:
        """Trials that may still start: the study's budget less what counts against it,
        capped by this call's allowance (None: no limit but time)."""
        budget = self.space.spec.budget.n_trials
        left = None if budget is None else max(0, budget - len(counted_trials(self.study)))
        if self.allowance is not None:
            left = self.allowance if left is None else min(left, self.allowance)
        return left

    def time_left(self) -> float | None:
        timeout = self.space.spec.budget.timeout
        return None if timeout is None else timeout - (time.monotonic() - self.started)

    def stopping(self) -> bool:
        return self.with_.should_stop is not None and self.with_.should_stop()

    def search_over(self) -> bool:
        return finished(self.study, self.space, self.time_left())

    # -- the loop ---------------------------------------------------------------------

    def _may_ask(self) -> bool:
        if self.stopping():
            return False
        left = self.remaining()
        self._left_at_ask = left
        return left is None or left > 0

    def _after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.allowance is not None:
            self.allowance -= 1
        self.events.trial_finished(trial.number, trial.state.name.lower(), trial.value,
                                   ROLE.get(trial), REASON.get(trial))
        # This trial took the last slot its ask saw: stop without reading the study again.
        # (Slots other workers, or other threads of this one, took meanwhile are found by
        # the next ask, under the gate: this check only saves that ask.)
        if self._left_at_ask is not None and self._left_at_ask <= 1:
            study.stop()

    def _optimize(self, n_trials: int | None) -> None:
        left = self.time_left()
        if n_trials == 0 or (left is not None and left <= 0):
            return
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        objective = TrialObjective(measurer=self.measurer, events=self.events,
                                   hostname=self.hostname)
        with gated_ask(self.study, self.gate, self._may_ask), \
                contextlib.suppress(_BudgetReached):
            self.study.optimize(objective, n_trials=n_trials, timeout=left,
                                catch=(TrialFailed,), callbacks=[self._after_trial],
                                gc_after_trial=False, n_jobs=self.limits.jobs)

    def _best_and_defaults(self) -> tuple[float | None, float | None]:
        complete = [t for t in live_trials(self.study)
                    if t.state == TrialState.COMPLETE and t.value is not None]
        if not complete:
            return None, None
        best = self.goal.best(float(t.value) for t in complete if t.value is not None)
        defaults = next((t.value for t in complete if ROLE.get(t) == "defaults"), None)
        return best, defaults


def finished(study: optuna.Study, space: SearchSpace, time_left: float | None) -> bool:
    """The search is over: the trial budget is used (and no trial still runs), or the time
    budget of a study without a trial budget is spent."""
    budget = space.spec.budget
    if budget.n_trials is not None:
        trials = counted_trials(study)
        return len(trials) >= budget.n_trials and not any(
            t.state == TrialState.RUNNING for t in trials)
    return time_left is not None and time_left <= 0
