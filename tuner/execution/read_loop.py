"""The read loop of one run: the children's output, line by line, as it streams.

One selector watches every child's pipe. Each chunk is split into lines (a line longer than
``MAX_LINE`` bytes is cut there, so a program that never prints a newline cannot fill the
memory); every line goes to the output tail, to that child's parser and to its echo reader
(``tuner.execution.echo``), if the run reads settings back. With concurrent
instances, ``Combiner`` turns the instances' readings into the trial's: interval ``i`` is
one reading once every instance has reached it, the sum of theirs when maximizing (a
throughput), the worst when minimizing (a latency). Each trial reading goes to the callback,
whose ``Decision`` may end the loop; so do the deadline and the last child's end of output.

With a ``LibrarySampler`` (``tuner.execution.libraries``) for the first child, the loop reads
what that child's processes map: at its first reading and at every final one (it is alive
and has done the work the reading measured), every ``sampler.every`` seconds while it runs
(a program whose only output is its last line may exit before that line is read), and at its
end of output.
"""

from __future__ import annotations

import os
import selectors
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuner.execution.children import Process
from tuner.execution.echo import EchoReader
from tuner.execution.libraries import LibrarySampler
from tuner.execution.outcome import Decision, OnReading, Transcript
from tuner.execution.parsers import Parser, Reading
from tuner.goal import Goal

MAX_LINE = 4000


class LineSplitter:
    """Bytes in, whole lines out (decoded, invalid UTF-8 replaced, line ends stripped)."""

    def __init__(self) -> None:
        self.buffer = b""

    def split(self, chunk: bytes) -> list[str]:
        self.buffer += chunk
        out = []
        while b"\n" in self.buffer or len(self.buffer) > MAX_LINE:
            cut = self.buffer.find(b"\n")
            cut = cut + 1 if cut >= 0 else MAX_LINE
            raw, self.buffer = self.buffer[:cut], self.buffer[cut:]
            out.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        return out

    def rest(self) -> str | None:
        """The last line, without its newline, once the output has ended."""
        if not self.buffer:
            return None
        return self.buffer.decode("utf-8", errors="replace")


class Combiner:
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


@dataclass(eq=False)
class Stream:
    """One child's output: its process, its parser, the label its tail lines carry, and the
    reader of its echo pattern, if the run has one."""

    proc: Process
    parser: Parser
    label: str = ""
    echo: EchoReader | None = None

    def __post_init__(self) -> None:
        assert self.proc.stdout is not None, "a child's stdout must be a pipe"
        self.stdout = self.proc.stdout
        self.lines = LineSplitter()
        self.done = False
        os.set_blocking(self.stdout.fileno(), False)


@dataclass(frozen=True, kw_only=True)
class Ticker:
    """Calls ``on_tick`` about every ``seconds`` while the loop runs (heartbeats)."""

    on_tick: Callable[[], None] | None = None
    seconds: float = 5.0


class ReadLoop:
    """Reads ``streams`` until every child's output has ended, the callback stops the run,
    or the deadline passes; what it saw is ``transcript``. Call ``run`` once. ``start`` (a
    ``time.monotonic()``) is when the run began: reading times count from it. ``sampler``
    reads the first child's libraries (see the module)."""

    def __init__(self, streams: Sequence[Stream], *, metric: str, goal: Goal,
                 on_reading: OnReading | None, tail_lines: int, start: float,
                 sampler: LibrarySampler | None = None) -> None:
        self.streams = list(streams)
        self.sampler = sampler
        self._sampled_reading = False
        self.metric = metric
        self.on_reading = on_reading
        self.combiner = Combiner(len(self.streams), goal)
        self.transcript = Transcript(tail=deque(maxlen=tail_lines))
        self.start = start

    def run(self, deadline: float, ticker: Ticker | None = None) -> Transcript:
        """Read until the end (see the class); ``deadline`` is a ``time.monotonic()``."""
        ticker = ticker or Ticker()
        seen = self.transcript
        next_tick = self.start + ticker.seconds
        with selectors.DefaultSelector() as selector:
            for index, stream in enumerate(self.streams):
                selector.register(stream.stdout, selectors.EVENT_READ, index)
            while any(not s.done for s in self.streams) and not self._stopped():
                now = time.monotonic()
                if now >= deadline:
                    seen.timed_out = True
                    break
                if ticker.on_tick is not None and now >= next_tick:
                    ticker.on_tick()
                    next_tick = now + ticker.seconds
                until = next_tick if ticker.on_tick is not None else deadline
                if self.sampler is not None and not self.streams[0].done:
                    self.sampler.poke()
                    until = min(until, self.sampler.due())
                wait = max(0.0, min(deadline, until) - now)
                for key, _ in selector.select(timeout=min(wait, 1.0)):
                    if self._read(selector, key.data):
                        break
        return seen

    def _stopped(self) -> bool:
        return self.transcript.enough or self.transcript.pruned_at is not None

    def _read(self, selector: selectors.BaseSelector, index: int) -> bool:
        """Read one chunk of one child's output; True when the callback stopped the run."""
        stream = self.streams[index]
        chunk = stream.stdout.read(65536)
        if chunk is None:  # nothing there after all (non-blocking)
            return False
        if chunk == b"":  # EOF: the child (and anything holding its stdout) is done
            stream.done = True
            selector.unregister(stream.stdout)
            if index == 0 and self.sampler is not None:
                self.sampler.poke(force=True)
            rest = stream.lines.rest()
            if rest is not None:
                self._line(index, rest)
            return False
        return any(self._line(index, line) for line in stream.lines.split(chunk))

    def _line(self, index: int, line: str) -> bool:
        """One line of one child: to the tail, its parser, the callback. True: stop."""
        stream = self.streams[index]
        seen = self.transcript
        seen.tail.append(stream.label + line[:MAX_LINE])
        if stream.echo is not None:
            stream.echo.feed(line[:MAX_LINE])
        found = stream.parser.feed(line)
        if found and index == 0 and self.sampler is not None:
            first = not self._sampled_reading
            self._sampled_reading = True
            if first or any(r.final for r in found):
                self.sampler.poke(force=True)
        for reading in found:
            combined = self.combiner.add(index, reading)
            if combined is None:
                continue
            seen.readings.append(combined)
            if combined.name == self.metric and not combined.final:
                seen.reading_times.append(time.monotonic() - self.start)
            decision = (self.on_reading(combined) if self.on_reading is not None
                        else Decision.CONTINUE)
            if decision is Decision.ENOUGH:
                seen.enough = True
                return True
            if decision is Decision.PRUNE and seen.pruned_at is None:
                seen.pruned_at = combined
                return True
        return False
