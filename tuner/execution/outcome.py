"""What one run came to. ``Outcome`` is the runner's only answer: OK with the metric and
its intervals, or FAILED, TIMEOUT, NO_METRIC or PRUNED with the reason, and in every case
what the workload reported about itself, the runtime libraries its process mapped
(``tuner.execution.libraries``) and the tail of its output. Expected failures are data, not
exceptions.

``Decision`` is what the reading callback (``OnReading``) answers after each reading: go
on, prune the run, or end it as a success valued at the mean of its intervals so far.
``Transcript`` is what the read loop saw of a run and ``conclude`` turns it into the Outcome,
reading the metrics with the parsers' own definition (``final_values``, ``interval_values``).
"""

from __future__ import annotations

import enum
import signal
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.execution.libraries import NAMES
from tuner.execution.parsers import Parser, Reading, final_values, interval_values


class Decision(enum.Enum):
    """What the reading callback decides after each reading."""

    CONTINUE = "continue"
    PRUNE = "prune"  # stop: the run is clearly worse than the best so far
    ENOUGH = "enough"  # stop: the run's intervals are already precise enough


#: Sees every reading of a run (its instances combined) as it appears.
OnReading = Callable[[Reading], Decision]


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NO_METRIC = "no_metric"
    PRUNED = "pruned"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The result of one run; ``reason`` says why it is not OK (or how an OK run ended)."""

    status: Status
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    #: What the workload reported it ran with (its SETTINGS line); with several instances,
    #: the first one's, plus ``instances``: every instance's.
    reported: dict[str, Any] | None = None
    returncode: int | None = None
    seconds: float = 0.0
    tail: str = ""
    #: What each instance printed it ran with, read back with the request's ``echo`` pattern
    #: (group -> text, first match wins; ``tuner.execution.echo``); empty without a pattern.
    echoed: list[dict[str, str]] = field(default_factory=list)
    #: Where the process's seconds went, as the workload reported (TIMING line).
    timing: dict[str, float] | None = None
    #: Seconds from the start to each interval reading of the trial's metric.
    reading_times: list[float] = field(default_factory=list)
    #: The threading and allocator libraries the (first instance's) process mapped, by the
    #: names of ``tuner.execution.libraries`` (the last read that succeeded while it ran; the
    #: workload's own SETTINGS ``libraries`` when none did); None: unknown.
    libraries: tuple[str, ...] | None = None
    #: The framework build the workload reported (its SETTINGS ``build``), if it did.
    build: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "reason": self.reason, "metrics": self.metrics,
                "intervals": self.intervals, "returncode": self.returncode,
                "seconds": round(self.seconds, 3), "tail": self.tail, "timing": self.timing,
                "reading_times": [round(t, 3) for t in self.reading_times],
                "libraries": None if self.libraries is None else list(self.libraries)}


@dataclass(kw_only=True)
class Transcript:
    """What the read loop saw of one run: the trial's readings (instances combined), when
    each interval of the metric arrived, the output's last lines, and how the loop ended."""

    readings: list[Reading] = field(default_factory=list)
    reading_times: list[float] = field(default_factory=list)
    tail: deque[str] = field(default_factory=deque)
    #: The reading the callback pruned at.
    pruned_at: Reading | None = None
    #: The callback answered ENOUGH.
    enough: bool = False
    timed_out: bool = False

    @property
    def stopped_early(self) -> bool:
        """Ended by the callback or the timeout, not by the children exiting."""
        return self.timed_out or self.enough or self.pruned_at is not None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


@dataclass(frozen=True, kw_only=True)
class Ended:
    """The children of a run once they are gone: their parsers, exit statuses and, with an
    echo pattern, the values each read back."""

    parsers: Sequence[Parser]
    returncodes: Sequence[int | None]
    seconds: float
    echoed: Sequence[dict[str, str]] = ()
    #: What the first child's processes mapped (None: could not be read).
    libraries: tuple[str, ...] | None = None


def loaded(mapped: tuple[str, ...] | None,
           reported: dict[str, Any] | None) -> dict[str, Any]:
    """``libraries`` and ``build`` of an Outcome: what the process mapped, else the
    libraries the workload reported (known names only), and the build it reported."""
    libraries = mapped
    said = (reported or {}).get("libraries")
    if libraries is None and isinstance(said, list):
        libraries = tuple(n for n in NAMES if n in {str(s) for s in said})
    build = (reported or {}).get("build")
    return {"libraries": libraries, "build": dict(build) if isinstance(build, dict) else None}


def conclude(seen: Transcript, ended: Ended, *, metric: str, timeout: float) -> Outcome:
    """The Outcome of a finished run, in this order: ENOUGH, PRUNED, TIMEOUT, FAILED (the
    first instance that did not exit with 0), NO_METRIC, OK."""
    parsers = ended.parsers
    reported = parsers[0].reported
    if len(parsers) > 1 and reported is not None:
        reported = {**reported, "instances": [p.reported for p in parsers]}
    common: dict[str, Any] = dict(reported=reported, seconds=ended.seconds,
                                  tail="\n".join(seen.tail), timing=parsers[0].timing,
                                  reading_times=seen.reading_times,
                                  echoed=[dict(values) for values in ended.echoed],
                                  **loaded(ended.libraries, parsers[0].reported))
    if seen.enough:
        values = interval_values(seen.readings).get(metric, [])
        return Outcome(status=Status.OK, reason=f"stable after {len(values)} intervals",
                       metrics={metric: sum(values) / len(values)}, intervals={metric: values},
                       **common)
    metrics = final_values(seen.readings)
    codes = ended.returncodes
    common.update(metrics=metrics, intervals=interval_values(seen.readings),
                  returncode=next((c for c in codes if c), codes[0]))
    pruned = seen.pruned_at
    if pruned is not None:
        return Outcome(status=Status.PRUNED, reason=f"stopped early at interval "
                       f"{pruned.interval}: {pruned.name}={pruned.value:g} was clearly "
                       f"worse than the best so far", **common)
    if seen.timed_out:
        return Outcome(status=Status.TIMEOUT,
                       reason=f"still running after the {timeout:g} s timeout; stopped", **common)
    failed = [(i, code) for i, code in enumerate(codes) if code != 0]
    if failed:
        index, code = failed[0]
        which = f"instance {index} " if len(codes) > 1 else ""
        reason = describe_exit(code) if code is not None else "did not exit"
        return Outcome(status=Status.FAILED, reason=which + reason, **common)
    if metric not in metrics:
        found = f" (found: {', '.join(sorted(metrics))})" if metrics else ""
        return Outcome(status=Status.NO_METRIC,
                       reason=f"exited normally but printed no {metric!r} metric{found}",
                       **common)
    return Outcome(status=Status.OK, reason="", **common)
