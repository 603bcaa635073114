"""Run one ``Launch`` as fresh processes and return an ``Outcome``: ``run(request)``.

A ``RunRequest`` says what to run and how to read it (the launch, the metric and its
parser, the timeout, the environment, how much output to keep). ``run`` never raises for
anything the workload does: a crash, a hang past the timeout, output without the metric, or
a program that cannot start are all outcomes, with their reason and the tail of the output.
``on_reading`` sees every metric as it appears and answers a ``Decision``: go on, prune the
run (``PRUNE``), or end it as a success valued at the mean of its intervals so far
(``ENOUGH``: the measurement is already precise enough).

A launch with concurrent instances starts one child per instance; the trial's metric is the
sum of the instances' (a throughput) when maximizing, the worst instance's when minimizing
(a latency); interval ``i`` is reported once every instance has reached it.

The work is split by job: ``children`` starts and stops the processes, ``read_loop`` reads
their output, ``outcome`` builds the answer, ``echo`` reads back the settings a program
printed, ``libraries`` reads which threading and allocator runtimes the first child's
processes map (by pid, so a fresh process and a fork of the fork server alike;
``Outcome.libraries``). ``RunHooks`` lets a launcher replace how a child starts (the fork
server forks a pre-imported process) and ask for heartbeats.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.execution.children import (
    START_ERRORS,
    Process,
    Spawn,
    start_all,
    start_process,
    stop_all,
)
from tuner.execution.echo import EchoReader
from tuner.execution.launch import Launch
from tuner.execution.libraries import LibrarySampler
from tuner.execution.outcome import (
    Decision,
    Ended,
    OnReading,
    Outcome,
    Status,
    Transcript,
    conclude,
)
from tuner.execution.parsers import make_parser
from tuner.execution.read_loop import MAX_LINE, ReadLoop, Stream, Ticker
from tuner.goal import MAXIMIZE, Goal
from tuner.spec.models import ParserSpec

__all__ = [
    "MAX_LINE",
    "Decision",
    "OnReading",
    "Outcome",
    "Process",
    "RunHooks",
    "RunRequest",
    "Spawn",
    "Status",
    "run",
]

PROTOCOL = ParserSpec(preset="protocol")


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """One run: the launch, the knob values it applies, the metric and the parser that reads
    it, the timeout (seconds), the scrubbed base environment the launch's own is added to,
    how many output lines to keep, the seconds between SIGTERM and SIGKILL, the goal
    (which says how concurrent instances combine), and the ``echo`` pattern that reads back
    the settings the program printed it ran with (``Outcome.echoed``; checking them is the
    caller's job)."""

    launch: Launch
    applied: Mapping[str, Any] = field(default_factory=dict)
    metric: str
    timeout: float
    base_env: Mapping[str, str]
    parser_spec: ParserSpec = PROTOCOL
    tail_lines: int = 40
    kill_grace: float = 3.0
    goal: Goal = MAXIMIZE
    echo: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunHooks:
    """How the runner starts a child (``spawn``, default: a fresh process from the argument
    list) and whom it tells that it is alive: ``on_tick`` about every ``tick_seconds`` while
    the children run (heartbeats)."""

    spawn: Spawn = start_process
    on_tick: Callable[[], None] | None = None
    tick_seconds: float = 5.0


def run(request: RunRequest, on_reading: OnReading | None = None,
        hooks: RunHooks | None = None) -> Outcome:
    """Run ``request.launch`` to completion, timeout or pruning (see the module)."""
    hooks = hooks or RunHooks()
    launch = request.launch
    env = {**request.base_env, **launch.env}
    parsers = [make_parser(request.parser_spec) for _ in launch.copies()]
    start = time.monotonic()
    try:
        procs = start_all(launch, env, hooks.spawn, request.kill_grace)
    except START_ERRORS as exc:
        return Outcome(status=Status.FAILED, reason=f"cannot start {launch.command[0]!r}: {exc}",
                       seconds=time.monotonic() - start)
    labels = [f"[{i}] " if len(procs) > 1 else "" for i in range(len(procs))]
    streams = [Stream(p, parser, label, EchoReader(request.echo) if request.echo else None)
               for p, parser, label in zip(procs, parsers, labels, strict=True)]
    sampler = LibrarySampler(procs[0].pid)
    loop = ReadLoop(streams, metric=request.metric, goal=request.goal, on_reading=on_reading,
                    tail_lines=request.tail_lines, start=start, sampler=sampler)
    deadline = start + request.timeout
    try:
        seen = loop.run(deadline, Ticker(on_tick=hooks.on_tick, seconds=hooks.tick_seconds))
    except BaseException:
        stop_all(procs, request.kill_grace)
        raise
    _finish(procs, seen, deadline, request.kill_grace)
    for stream in streams:
        with contextlib.suppress(OSError):
            stream.stdout.close()
    ended = Ended(parsers=parsers, returncodes=[p.returncode for p in procs],
                  seconds=time.monotonic() - start,
                  echoed=[s.echo.values for s in streams if s.echo is not None],
                  libraries=sampler.libraries)
    return conclude(seen, ended, metric=request.metric, timeout=request.timeout)


def _finish(procs: list[Process], seen: Transcript, deadline: float, grace: float) -> None:
    """Stop the children of a run ended early; wait for the others (until the deadline)."""
    if seen.stopped_early:
        stop_all(procs, grace)
        return
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            seen.timed_out = True
            stop_all([proc], grace)
