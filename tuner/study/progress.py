"""Progress while tuning: trials done of planned, best so far, improvement over the defaults
baseline, and time left. A redrawn bar on a terminal, one line per trial otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tuner.goal import Goal
from tuner.results.render import fmt_value, format_ratio


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Told when trials start and finish (a ``tuner.study.events.RunEvents``); draws the
    state of the study."""

    def __init__(self, *, planned: int | None, time_budget: float | None, unit: str,
                 goal: Goal, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.planned = planned
        self.time_budget = time_budget
        self.unit = unit
        self.goal = goal
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.durations: list[float] = []
        self.done = 0
        self.best: float | None = None
        self.defaults: float | None = None
        self._trial_start = self.started
        self._bar_shown = False

    def resume(self, done: int, best: float | None, defaults: float | None) -> None:
        self.done, self.best, self.defaults = done, best, defaults

    def trial_started(self, number: int, role: str, values: dict[str, Any]) -> None:
        self._trial_start = time.monotonic()
        shown = ", ".join(f"{k}={v}" for k, v in values.items()) or "no knob set"
        self._line(f"trial {number} [{role}] {shown}")
        if self.tty:
            self._draw()

    def trial_finished(self, number: int, state: str, value: float | None, role: str,
                       reason: str = "") -> None:
        self.durations.append(time.monotonic() - self._trial_start)
        self.done += 1
        if value is not None and state == "complete":
            if self.best is None or self.goal.better(value, self.best):
                self.best = value
            if role == "defaults":
                self.defaults = value
        result = fmt_value(value, self.unit) if state == "complete" else f"{state}: {reason}"
        self._line(f"trial {number} -> {result}")
        self._draw()

    def note(self, text: str) -> None:
        """A line about the study's progress outside trials (noise, screening, confirmation)."""
        self._line(text)
        if self.tty:
            self._draw()

    def close(self) -> None:
        if self.tty and self._bar_shown and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    def status(self) -> str:
        planned = self.planned
        width = 20
        bar = ""
        if planned:
            filled = min(width, round(width * self.done / planned))
            bar = "[" + "#" * filled + "-" * (width - filled) + "] "
        parts = [f"{bar}{self.done}/{planned if planned else '?'} trials"]
        if self.best is not None:
            best = f"best search value {fmt_value(self.best, self.unit)}"
            if self.defaults:
                ratio = self.goal.ratio(self.best, self.defaults)
                best += f" ({format_ratio(ratio)} vs defaults, single runs: unconfirmed)"
            parts.append(best)
        left = self.time_left()
        if left is not None:
            parts.append(f"~{_duration(left)} left")
        return " | ".join(parts)

    def time_left(self) -> float | None:
        elapsed = time.monotonic() - self.started
        estimates = []
        if self.planned and self.durations:
            mean = sum(self.durations) / len(self.durations)
            estimates.append(max(0, self.planned - self.done) * mean)
        if self.time_budget:
            estimates.append(max(0.0, self.time_budget - elapsed))
        return min(estimates) if estimates else None

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty and self._bar_shown:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._bar_shown = False

    def _draw(self) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K" + self.status())
            self._bar_shown = True
        elif self.done:
            self.stream.write("  " + self.status() + "\n")
        self.stream.flush()
