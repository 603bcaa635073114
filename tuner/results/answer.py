"""A study's answer to "what is best", in one place: every surface (``tuner list``,
``tuner best``, the API, the dashboard's header and chart, the note Optuna's tools show)
prints this object and nothing else.

Once the confirmation ran, the answer is its winner with the confirmed mean and 95% interval
of its throughput. Before, it is the best value of the search, labelled as what it is: the
value of a few single runs that were never compared side by side with the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Answer:
    trial: int
    role: str
    knobs: dict[str, Any]
    value: float
    unit: str
    metric: str
    confirmed: bool
    low: float | None = None
    high: float | None = None
    #: Interleaved rounds of the confirmation, or the trial's search runs.
    runs: int = 0

    @property
    def interval(self) -> dict[str, float] | None:
        if self.low is None or self.high is None:
            return None
        return {"mean": self.value, "low": self.low, "high": self.high}

    @property
    def basis(self) -> str:
        if self.confirmed:
            return f"confirmed over {self.runs} interleaved rounds"
        return (f"unconfirmed: the search value of {self.runs} single "
                f"run{'s' if self.runs != 1 else ''}, not compared side by side")

    @property
    def value_text(self) -> str:
        text = f"{self.value:.4g}"
        if self.low is not None and self.high is not None:
            text += f" [{self.low:.4g}, {self.high:.4g}]"
        return f"{text} {self.unit}".strip()

    @property
    def label(self) -> str:
        """One line: value (interval), basis, trial and role."""
        who = f"trial {self.trial}" + (f" ({self.role})" if self.role != "search" else "")
        return f"{self.value_text}, {self.basis} — {who}"

    @property
    def knobs_text(self) -> str:
        if not self.knobs:
            return "nothing set (the framework defaults)"
        return " ".join(f"{k}={v}" for k, v in sorted(self.knobs.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "role": self.role, "knobs": self.knobs,
                "value": self.value, "low": self.low, "high": self.high, "unit": self.unit,
                "metric": self.metric, "confirmed": self.confirmed, "runs": self.runs,
                "basis": self.basis, "label": self.label}


@dataclass(frozen=True, kw_only=True)
class Confirmed:
    """One configuration of the confirmation: its throughput's mean and 95% interval, and
    its speedup over the defaults (with interval) where it was compared with them."""

    label: str
    trial: int | None
    mean: float
    low: float
    high: float
    rounds: int
    best: bool
    speedup: dict[str, Any] = field(default_factory=dict)


def confirmed_entries(confirmation: dict[str, Any]) -> list[Confirmed]:
    """The confirmation's configurations that have an interval, in the order they ran."""
    out = []
    for entry in confirmation.get("entries", []):
        throughput = entry.get("throughput")
        if not throughput:
            continue
        out.append(Confirmed(
            label=str(entry["label"]), trial=entry.get("trial"),
            mean=float(throughput["mean"]), low=float(throughput["low"]),
            high=float(throughput["high"]),
            rounds=sum(v is not None for v in entry.get("values", [])),
            best=entry["label"] == confirmation.get("best"),
            speedup=dict(entry.get("speedups", {}).get("defaults") or {})))
    return out
