"""Interleaved measurement of several configurations: round after round, each configuration
runs once per round, in an order rotated every round (A B C, B C A, C A B, ...), so that slow
drift of the machine and position effects fall on every configuration alike and runs of the
same round can be compared in pairs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.study.measure import Measurer


@dataclass
class Entry:
    """One configuration being compared: what to apply, and its value in each round
    (None where that run failed)."""

    label: str
    applied: Mapping[str, Any]
    trial: int | None = None
    values: list[float | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def ok_values(self) -> list[float]:
        return [v for v in self.values if v is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "applied": dict(self.applied), "trial": self.trial,
                "values": self.values, "reasons": self.reasons}


def paired(a: Entry, b: Entry) -> tuple[list[float], list[float]]:
    """The values of rounds where both runs succeeded."""
    pairs = [(x, y) for x, y in zip(a.values, b.values, strict=True)
             if x is not None and y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def run_rounds(measurer: Measurer, entries: Sequence[Entry], rounds: int,
               on_run: Callable[[int, Entry, float | None], None] | None = None) -> None:
    """Run ``rounds`` interleaved rounds, appending each run's value to its entry."""
    count = len(entries)
    for index in range(rounds):
        order = [entries[(index + k) % count] for k in range(count)]
        for entry in order:
            outcome = measurer.run(entry.applied)
            value = outcome.metrics.get(measurer.metric) if outcome.ok else None
            entry.values.append(value)
            entry.reasons.append(outcome.reason)
            if on_run is not None:
                on_run(index, entry, value)
