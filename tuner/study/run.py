"""A study from start to finish, resumable at every step:

1. open (or resume) the Optuna study on its storage, fail and retry trials left running by a
   dead tuner, enqueue the baselines that have not run;
2. run the baselines: the defaults ``noise.runs`` times (the noise floor), the vendor's;
3. screen the knobs that may be inert and fix those that are (``tuner.study.screening``);
4. run the sampler's proposals until the budget is used (``tuner.study.trial``);
5. confirm the top candidates against both baselines (``tuner.study.confirmation``).

Trials are driven by ``Study.optimize``: a workload's failure is a FAIL trial with its reason
(``TrialFailed`` is caught), a pruned run a PRUNED one, and optimize keeps heartbeats and
fails stale trials of dead workers.
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
from tuner.host import Fingerprint
from tuner.results.publish import publish
from tuner.settings import Settings
from tuner.space.search_space import SearchSpace
from tuner.store import records
from tuner.store.database import (
    counted_trials,
    live_trials,
    set_status,
)
from tuner.store.gate import StudyGate
from tuner.study import confirmation, screening
from tuner.study.measure import Measurer
from tuner.study.opening import enqueue_baselines, open_study, recover_abandoned
from tuner.study.progress import Progress
from tuner.study.trial import Objective, TrialFailed

logger = logging.getLogger(__name__)


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
        with gate.hold():
            if not may_ask():
                raise _BudgetReached
            return original(fixed_distributions)

    study.ask = ask  # type: ignore[method-assign]
    try:
        yield
    finally:
        del study.ask  # the instance attribute goes; the class's method shows again


@dataclass(frozen=True)
class TuneResult:
    study: optuna.Study
    ran: int
    recovered: list[int]
    confirmation: dict[str, object] | None


def tune(space: SearchSpace, *, storage_url: str, fingerprint: Fingerprint, spec_text: str,
         settings: Settings, progress: Progress | None = None, max_trials: int | None = None,
         backend: Backend | None = None, confirm: bool = True,
         sampler: optuna.samplers.BaseSampler | None = None, jobs: int = 1,
         gate: StudyGate | None = None, should_stop: Callable[[], bool] | None = None,
         recover_local: bool = True, started_at: float | None = None,
         resume_stopped: bool = False) -> TuneResult:
    """Run the study until its budget is used (resuming whatever is stored), then confirm.

    ``sampler`` replaces the study file's (benchmarks compare samplers); ``jobs`` runs that
    many trials at once in threads, which only a replay backend may do: real trials on one
    machine would measure each other.

    ``gate`` serialises trial claims with other workers; ``should_stop`` is asked before each
    new trial (a worker's SIGTERM, the study stopped through the API); ``recover_local``
    fails trials left running by a dead tuner process of this host at once (workers rely on
    heartbeats instead); ``started_at`` (epoch seconds) makes ``budget.timeout`` count from
    the study's start rather than from this call. The study's ``status`` attribute goes to
    ``running`` (from unset or ``queued``; from ``stopped`` only with ``resume_stopped``, as
    when a user runs it from the command line) and to ``done`` when the search and its
    confirmation are complete."""
    started = time.monotonic() - (time.time() - started_at if started_at else 0.0)
    hostname = socket.gethostname()
    gate = gate or StudyGate("memory", space.spec.name)
    with gate.hold():  # check-and-set of the study's identity: one worker at a time
        study = open_study(space, storage_url=storage_url, fingerprint=fingerprint,
                           spec_text=spec_text, sampler=sampler)
    status = study.user_attrs.get("status")
    if status in (None, "queued") or (resume_stopped and status == "stopped"):
        set_status(study, "running")
        if "started_at" not in study.user_attrs:
            study.set_user_attr("started_at", time.time())
    recovered = recover_abandoned(study, hostname) if recover_local else []
    with gate.hold():
        enqueue_baselines(study, space)
    budget = space.spec.budget
    measurer = Measurer(space, settings, backend or backend_for(space.spec.launcher))
    objective = Objective(measurer, progress=progress, hostname=hostname)
    say = progress.note if progress is not None else None
    ran_before = len(study.get_trials(deepcopy=False))
    allowance = [max_trials]  # trials this call may still run

    def remaining() -> int | None:
        left = None if budget.n_trials is None else max(
            0, budget.n_trials - len(counted_trials(study)))
        if allowance[0] is not None:
            left = allowance[0] if left is None else min(left, allowance[0])
        return left

    def time_left() -> float | None:
        return None if budget.timeout is None else budget.timeout - (time.monotonic() - started)

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        if allowance[0] is not None:
            allowance[0] -= 1
        if progress is not None:
            progress.trial_finished(trial.number, trial.state.name.lower(), trial.value,
                                    str(trial.user_attrs.get("role", "search")),
                                    str(records.get(trial.user_attrs, "reason", "")))
        if remaining() == 0:
            study.stop()

    def stopping() -> bool:
        return should_stop is not None and should_stop()

    def may_ask() -> bool:
        if stopping():
            return False
        left = remaining()
        return left is None or left > 0

    def optimize(n_trials: int | None) -> None:
        left = time_left()
        if n_trials == 0 or (left is not None and left <= 0):
            return
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        with gated_ask(study, gate, may_ask), contextlib.suppress(_BudgetReached):
            study.optimize(objective, n_trials=n_trials, timeout=left, catch=(TrialFailed,),
                           callbacks=[after_trial], gc_after_trial=False, n_jobs=jobs)

    try:
        if progress is not None:
            best, defaults = _best_and_defaults(study)
            progress.resume(len(counted_trials(study)), best, defaults)
        waiting = [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                   if t.user_attrs.get("role") in {b.name for b in space.baselines}]
        left = remaining()
        optimize(len(waiting) if left is None else min(len(waiting), left))
        noise = records.get(study.user_attrs, "noise")
        if noise and remaining() != 0 and not stopping():
            if say and noise.get("warning"):
                say("warning: " + noise["warning"])
            screening.screen(study, measurer, gate=gate, say=say)
        optimize(remaining())
        confirmed = None
        over = finished(study, space, time_left())
        if confirm and over:
            confirmed = confirmation.confirm(study, measurer, gate=gate, say=say)
        if over:
            publish(study)
        complete = space.spec.confirm.top == 0 or not confirm or (
            "confirmation" in study.user_attrs)
        if over and complete and study.user_attrs.get("status") == "running":
            set_status(study, "done")
    finally:
        if progress is not None:
            progress.close()
        measurer.backend.close()
    return TuneResult(study=study, ran=len(study.get_trials(deepcopy=False)) - ran_before,
                      recovered=recovered, confirmation=confirmed)


def finished(study: optuna.Study, space: SearchSpace, time_left: float | None) -> bool:
    """The search is over: the trial budget is used (and no trial still runs), or the time
    budget of a study without a trial budget is spent."""
    budget = space.spec.budget
    if budget.n_trials is not None:
        trials = counted_trials(study)
        return len(trials) >= budget.n_trials and not any(
            t.state == TrialState.RUNNING for t in trials)
    return time_left is not None and time_left <= 0


def _best_and_defaults(study: optuna.Study) -> tuple[float | None, float | None]:
    complete = [t for t in live_trials(study) if t.state == TrialState.COMPLETE]
    if not complete:
        return None, None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = (max if maximize else min)(t.value for t in complete if t.value is not None)
    defaults = next((t.value for t in complete if t.user_attrs.get("role") == "defaults"), None)
    return best, defaults
