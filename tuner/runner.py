"""Run one ``Launch`` as a fresh process and return an ``Outcome``. Never raises for anything
the workload does: a crash, a hang past the timeout, output without the metric, or a program
that cannot start are all outcomes, with their reason and the tail of the output.

The child runs from an argument list (never a shell), in a session of its own so the whole
process group can be stopped, and dies with the tuner (PR_SET_PDEATHSIG) so a killed tuner
leaves no workload measuring behind its back. Output is streamed line by line to the parser;
``on_reading`` sees every metric as it appears and may ask to stop the run (pruning).
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
from dataclasses import dataclass, field
from typing import Any

from tuner.launch import Launch
from tuner.parsers import Parser, Reading

MAX_LINE = 4000
_PR_SET_PDEATHSIG = 1


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

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "reason": self.reason, "metrics": self.metrics,
                "intervals": self.intervals, "returncode": self.returncode,
                "seconds": round(self.seconds, 3), "tail": self.tail}


def _child_setup(affinity: tuple[int, ...] | None) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if affinity:
            os.sched_setaffinity(0, affinity)
    return setup


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def run(
    launch: Launch,
    *,
    parser: Parser,
    metric: str,
    timeout: float,
    base_env: Mapping[str, str],
    tail_lines: int = 40,
    kill_grace: float = 3.0,
    on_reading: Callable[[Reading], bool] | None = None,
    on_tick: Callable[[], None] | None = None,
    tick_seconds: float = 5.0,
) -> Outcome:
    """Run ``launch`` to completion, timeout or pruning.

    ``on_reading(reading)`` returning True stops the run as PRUNED. ``on_tick`` is called
    about every ``tick_seconds`` while the child runs (heartbeats).
    """
    tail: deque[str] = deque(maxlen=tail_lines)
    env = {**base_env, **launch.env}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            launch.command, env=env, cwd=launch.cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_child_setup(launch.affinity), close_fds=True)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return Outcome(status=Status.FAILED, reason=f"cannot start {launch.command[0]!r}: {exc}",
                       seconds=time.monotonic() - start)
    assert proc.stdout is not None
    deadline = start + timeout
    pruned_at: Reading | None = None
    timed_out = False
    buffer = b""

    def handle(raw: bytes) -> bool:
        nonlocal pruned_at
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line[:MAX_LINE])
        for reading in parser.feed(line):
            if on_reading is not None and on_reading(reading) and pruned_at is None:
                pruned_at = reading
                return True
        return False

    os.set_blocking(proc.stdout.fileno(), False)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    next_tick = start + tick_seconds
    stop = False
    try:
        while not stop:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if on_tick is not None and now >= next_tick:
                on_tick()
                next_tick = now + tick_seconds
            wait = max(0.0, min(deadline, next_tick if on_tick else deadline) - now)
            if not selector.select(timeout=min(wait, 1.0)):
                continue
            chunk = proc.stdout.read(65536)
            if chunk is None:
                continue
            if chunk == b"":
                break  # EOF: the child (and anything holding its stdout) is done
            buffer += chunk
            while b"\n" in buffer or len(buffer) > MAX_LINE:
                cut = buffer.find(b"\n")
                cut = cut + 1 if cut >= 0 else MAX_LINE
                raw, buffer = buffer[:cut], buffer[cut:]
                if handle(raw):
                    stop = True
                    break
        if buffer and not stop and not timed_out:
            handle(buffer)
    except BaseException:
        _stop_group(proc, kill_grace)
        raise
    finally:
        selector.close()
    if timed_out or stop:
        _stop_group(proc, kill_grace)
    else:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(proc, kill_grace)
    with contextlib.suppress(OSError):
        proc.stdout.close()
    seconds = time.monotonic() - start
    metrics = parser.result()
    intervals = {name: parser.intervals(name) for name in {r.name for r in parser.readings}}
    common: dict[str, Any] = dict(metrics=metrics, intervals=intervals, settings=parser.settings,
                                  returncode=proc.returncode, seconds=seconds,
                                  tail="\n".join(tail))
    if pruned_at is not None:
        return Outcome(status=Status.PRUNED, reason=f"stopped early at interval "
                       f"{pruned_at.interval}: {pruned_at.name}={pruned_at.value:g} was clearly "
                       f"worse than the best so far", **common)
    if timed_out:
        return Outcome(status=Status.TIMEOUT,
                       reason=f"still running after the {timeout:g} s timeout; stopped", **common)
    if proc.returncode != 0:
        return Outcome(status=Status.FAILED, reason=_describe_exit(proc.returncode), **common)
    if metric not in metrics:
        found = f" (found: {', '.join(sorted(metrics))})" if metrics else ""
        return Outcome(status=Status.NO_METRIC,
                       reason=f"exited normally but printed no {metric!r} metric{found}",
                       **common)
    return Outcome(status=Status.OK, reason="", **common)
