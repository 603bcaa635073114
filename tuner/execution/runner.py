"""Run one ``Launch`` as fresh processes and return an ``Outcome``. Never raises for anything
the workload does: a crash, a hang past the timeout, output without the metric, or a program
that cannot start are all outcomes, with their reason and the tail of the output.

Each child runs from an argument list (never a shell), in a session of its own so its whole
process group can be stopped, and dies with the tuner (PR_SET_PDEATHSIG) so a killed tuner
leaves no workload measuring behind its back. Output is streamed line by line to the parser;
``on_reading`` sees every metric as it appears and answers a ``Decision``: go on, prune the
run (``PRUNE``), or end it as a success valued at the mean of its intervals so far
(``ENOUGH``: the measurement is already precise enough).

A launch with concurrent instances starts one child per instance; the trial's metric is the
sum of the instances' (a throughput) when maximizing, the worst instance's when minimizing
(a latency); interval ``i`` is reported once every instance has reached it.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import os
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tuner.execution.launch import Instance, Launch
from tuner.execution.parsers import Parser, Reading
from tuner.goal import MAXIMIZE, Goal

MAX_LINE = 4000
_PR_SET_PDEATHSIG = 1


class Decision(enum.Enum):
    """What the reading callback decides after each reading."""

    CONTINUE = "continue"
    PRUNE = "prune"  # stop: the run is clearly worse than the best so far
    ENOUGH = "enough"  # stop: the run's intervals are already precise enough


OnReading = Callable[["Reading"], Decision]


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NO_METRIC = "no_metric"
    PRUNED = "pruned"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: Status
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    settings: dict[str, Any] | None = None
    returncode: int | None = None
    seconds: float = 0.0
    tail: str = ""
    #: Where the process's seconds went, as the workload reported (TIMING line).
    timing: dict[str, float] | None = None
    #: Seconds from the start to each interval reading of the trial's metric.
    reading_times: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "reason": self.reason, "metrics": self.metrics,
                "intervals": self.intervals, "returncode": self.returncode,
                "seconds": round(self.seconds, 3), "tail": self.tail, "timing": self.timing,
                "reading_times": [round(t, 3) for t in self.reading_times]}


def _child_setup(affinity: tuple[int, ...] | None) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if affinity:
            os.sched_setaffinity(0, affinity)
    return setup


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Process(Protocol):
    """What the runner needs of a child: ``subprocess.Popen`` has it, so does a fork."""

    pid: int
    returncode: int | None
    stdout: Any

    def wait(self, timeout: float | None = None) -> int:
        ...


Spawn = Callable[[Launch, Instance, Mapping[str, str]], Process]


class _Child:
    """One running process: its pipe, partial line, parser and kept output."""

    def __init__(self, proc: Process, parser: Parser, label: str) -> None:
        self.proc = proc
        self.parser = parser
        self.label = label
        self.buffer = b""
        self.done = False
        assert proc.stdout is not None
        self.stdout = proc.stdout
        os.set_blocking(self.stdout.fileno(), False)

    def lines(self, chunk: bytes) -> list[str]:
        self.buffer += chunk
        out = []
        while b"\n" in self.buffer or len(self.buffer) > MAX_LINE:
            cut = self.buffer.find(b"\n")
            cut = cut + 1 if cut >= 0 else MAX_LINE
            raw, self.buffer = self.buffer[:cut], self.buffer[cut:]
            out.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        return out

    def stop(self, grace: float) -> None:
        """SIGTERM the child's process group, then SIGKILL whatever is left after ``grace``."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class _Combiner:
    """Turns per-instance readings into the trial's readings (instances add up)."""

    def __init__(self, count: int, goal: Goal) -> None:
        self.count = count
        self.goal = goal
        self.pending: dict[tuple[str, int | None], dict[int, float]] = {}

    def add(self, index: int, reading: Reading) -> Reading | None:
        if self.count == 1:
            return reading
        key = (reading.name, None if reading.final else reading.interval)
        seen = self.pending.setdefault(key, {})
        seen[index] = reading.value
        if len(seen) < self.count:
            return None
        return Reading(reading.name, self.goal.combine_instances(list(seen.values())),
                       interval=reading.interval, final=reading.final)


def run(
    launch: Launch,
    *,
    parser: Parser | Callable[[], Parser],
    metric: str,
    timeout: float,
    base_env: Mapping[str, str],
    tail_lines: int = 40,
    kill_grace: float = 3.0,
    goal: Goal = MAXIMIZE,
    on_reading: OnReading | None = None,
    on_tick: Callable[[], None] | None = None,
    tick_seconds: float = 5.0,
    spawn: Spawn | None = None,
) -> Outcome:
    """Run ``launch`` to completion, timeout or pruning.

    ``parser`` is a parser, or a factory of parsers (one per instance). ``on_reading``
    answering ``Decision.PRUNE`` stops the run as PRUNED. ``on_tick`` is called about every
    ``tick_seconds`` while the children run (heartbeats). ``spawn`` starts a child (default:
    a fresh process from the argument list; the fork server passes its own).
    """
    copies = launch.copies()
    make = None if isinstance(parser, Parser) else parser
    if make is None and len(copies) > 1:
        raise ValueError("concurrent instances need a parser factory, one parser each")
    tail: deque[str] = deque(maxlen=tail_lines)
    env = {**base_env, **launch.env}
    start = time.monotonic()
    children: list[_Child] = []
    for index, copy in enumerate(copies):
        try:
            proc = (spawn or _start)(launch, copy, env)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            for child in children:
                child.stop(kill_grace)
            return Outcome(status=Status.FAILED,
                           reason=f"cannot start {launch.command[0]!r}: {exc}",
                           seconds=time.monotonic() - start)
        the_parser = make() if make is not None else parser
        assert isinstance(the_parser, Parser)
        children.append(_Child(proc, the_parser, f"[{index}] " if len(copies) > 1 else ""))
    combiner = _Combiner(len(children), goal)
    readings: list[Reading] = []
    times: list[float] = []
    deadline = start + timeout
    pruned_at: Reading | None = None
    enough = False
    timed_out = False
    selector = selectors.DefaultSelector()
    for index, child in enumerate(children):
        selector.register(child.stdout, selectors.EVENT_READ, index)
    next_tick = start + tick_seconds

    def handle(index: int, line: str) -> bool:
        nonlocal pruned_at, enough
        child = children[index]
        tail.append(child.label + line[:MAX_LINE])
        for reading in child.parser.feed(line):
            combined = combiner.add(index, reading)
            if combined is None:
                continue
            readings.append(combined)
            if combined.name == metric and not combined.final:
                times.append(time.monotonic() - start)
            decision = on_reading(combined) if on_reading is not None else Decision.CONTINUE
            if decision is Decision.ENOUGH:
                enough = True
                return True
            if decision is Decision.PRUNE and pruned_at is None:
                pruned_at = combined
                return True
        return False

    try:
        while any(not c.done for c in children) and pruned_at is None and not enough:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if on_tick is not None and now >= next_tick:
                on_tick()
                next_tick = now + tick_seconds
            wait = max(0.0, min(deadline, next_tick if on_tick else deadline) - now)
            for key, _ in selector.select(timeout=min(wait, 1.0)):
                index = key.data
                child = children[index]
                chunk = child.stdout.read(65536)
                if chunk is None:
                    continue
                if chunk == b"":  # EOF: the child (and anything holding its stdout) is done
                    child.done = True
                    selector.unregister(child.stdout)
                    if child.buffer:
                        handle(index, child.buffer.decode("utf-8", errors="replace"))
                    continue
                if any(handle(index, line) for line in child.lines(chunk)):
                    break
    except BaseException:
        for child in children:
            child.stop(kill_grace)
        raise
    finally:
        selector.close()
    if timed_out or pruned_at is not None or enough:
        for child in children:
            child.stop(kill_grace)
    else:
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                child.stop(kill_grace)
    for child in children:
        with contextlib.suppress(OSError):
            child.stdout.close()
    if enough:
        values = [r.value for r in readings if r.name == metric and not r.final]
        intervals = {metric: values}
        return Outcome(status=Status.OK, reason=f"stable after {len(values)} intervals",
                       metrics={metric: sum(values) / len(values)}, intervals=intervals,
                       settings=children[0].parser.settings, seconds=time.monotonic() - start,
                       tail="\n".join(tail), reading_times=times)
    outcome = _outcome(children, readings, metric=metric, timeout=timeout, timed_out=timed_out,
                       pruned_at=pruned_at, seconds=time.monotonic() - start, tail=tail)
    return replace(outcome, timing=children[0].parser.timing, reading_times=times)


def _start(launch: Launch, copy: Instance, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*copy.prefix, *launch.argv], env=dict(env), cwd=launch.cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_child_setup(copy.affinity), close_fds=True)


def _outcome(children: list[_Child], readings: list[Reading], *, metric: str, timeout: float,
             timed_out: bool, pruned_at: Reading | None, seconds: float,
             tail: deque[str]) -> Outcome:
    metrics = {r.name: r.value for r in readings if not r.final}
    metrics.update({r.name: r.value for r in readings if r.final})
    intervals: dict[str, list[float]] = {}
    for reading in readings:
        if not reading.final:
            intervals.setdefault(reading.name, []).append(reading.value)
    settings = children[0].parser.settings
    if len(children) > 1 and settings is not None:
        settings = {**settings, "instances": [c.parser.settings for c in children]}
    codes = [c.proc.returncode for c in children]
    common: dict[str, Any] = dict(metrics=metrics, intervals=intervals, settings=settings,
                                  returncode=next((c for c in codes if c), codes[0]),
                                  seconds=seconds, tail="\n".join(tail))
    if pruned_at is not None:
        return Outcome(status=Status.PRUNED, reason=f"stopped early at interval "
                       f"{pruned_at.interval}: {pruned_at.name}={pruned_at.value:g} was clearly "
                       f"worse than the best so far", **common)
    if timed_out:
        return Outcome(status=Status.TIMEOUT,
                       reason=f"still running after the {timeout:g} s timeout; stopped", **common)
    failed = [(i, c) for i, c in enumerate(children) if c.proc.returncode != 0]
    if failed:
        index, child = failed[0]
        which = f"instance {index} " if len(children) > 1 else ""
        code = child.proc.returncode
        reason = _describe_exit(code) if code is not None else "did not exit"
        return Outcome(status=Status.FAILED, reason=which + reason, **common)
    if metric not in metrics:
        found = f" (found: {', '.join(sorted(metrics))})" if metrics else ""
        return Outcome(status=Status.NO_METRIC,
                       reason=f"exited normally but printed no {metric!r} metric{found}",
                       **common)
    return Outcome(status=Status.OK, reason="", **common)
