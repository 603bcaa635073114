"""Fakes of the plug-in points, for tests and benchmarks of tuner's own machinery."""

from __future__ import annotations

import statistics

from tuner.execution.backend import Backend, RunRequest
from tuner.execution.outcome import Decision, OnReading, Outcome, Status
from tuner.execution.parsers import Reading


class InstantBackend(Backend):
    """Answers every run at once, with the intervals a real run would report (three, around
    a value that depends on the knob values), and honours the callback's decisions."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        self.calls += 1
        value = 100.0 + sum(len(str(v)) for v in request.applied.values()) % 17
        intervals = [value * (1 + 0.01 * i) for i in (-1, 0, 1)]
        for index, v in enumerate(intervals, start=1):
            decision = (on_reading(Reading(request.metric, v, interval=index))
                        if on_reading is not None else Decision.CONTINUE)
            if decision is Decision.PRUNE:
                return Outcome(status=Status.PRUNED, reason="pruned", seconds=0.0)
            if decision is Decision.ENOUGH:
                seen = intervals[:index]
                return Outcome(status=Status.OK, reason=f"stable after {index} intervals",
                               metrics={request.metric: statistics.fmean(seen)},
                               intervals={request.metric: seen})
        return Outcome(status=Status.OK, reason="", metrics={request.metric: value},
                       intervals={request.metric: intervals})
