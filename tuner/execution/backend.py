"""How one launch is run: a ``RunRequest`` (the launch and how to read it) goes to a
``Backend``, which returns an ``Outcome``. ``ProcessBackend`` runs a fresh process; the fork
server (``tuner.execution.forkserver``) forks a pre-imported one; the host lock
(``tuner.execution.host_lock``) wraps any backend; ``tuner.testing`` has a replay backend that
draws from a recorded surface and an instant one."""

from __future__ import annotations

from abc import ABC, abstractmethod

from tuner.execution import runner
from tuner.execution.outcome import OnReading, Outcome, Status
from tuner.execution.runner import RunRequest

__all__ = ["Backend", "ProcessBackend", "RunRequest"]


class Backend(ABC):
    """How a launch is run: the plug-in point between a trial and its processes.

    Call order: ``run`` once per measurement, one at a time (a backend need not be
    thread-safe), then ``close`` once when no more runs will come; a closed backend is not
    run again.

    ``run`` must never raise for anything the workload does: a crash, a hang, output without
    the metric, a program that cannot start are all outcomes (see ``Outcome``). It calls
    ``on_reading`` with every reading of the trial's metrics as it arrives, in order, and
    stops as the ``Decision`` it answers says: ``PRUNE`` gives a PRUNED outcome, ``ENOUGH``
    an OK one valued at the mean of the metric's intervals so far.
    """

    @abstractmethod
    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        """Run once and return the outcome."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources (a fork server, say)."""


def unapplied_system(request: RunRequest) -> Outcome | None:
    """A failed outcome for a launch whose system settings nobody applied (they are applied
    by ``tuner.execution.system_backend``, which hands its inner backend the launch without
    them): such a run would measure the machine as it is under another name."""
    if not request.launch.system:
        return None
    return Outcome(status=Status.FAILED, reason=(
        "the launch changes system settings but was not run through the system backend "
        "(tuner.execution.system_backend): refused rather than measured unchanged"))


class ProcessBackend(Backend):
    """Every run in fresh processes (``tuner.execution.runner``)."""

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        return unapplied_system(request) or runner.run(request, on_reading)
