"""A study's answer to "what is best", in one place: every surface (``tuner list``,
``tuner best``, the API, the dashboard's header and chart, the note Optuna's tools show)
prints this object and nothing else.

Once the confirmation ran, the answer is its winner with the confirmed mean and 95% interval
of its throughput. Before, it is the best value of the search, labelled as what it is: the
value of a few single runs that were never compared side by side with the baselines.

A baseline that failed is named in the basis: the answer is then stated against the one that
ran only, or, when none ran, "with nothing to compare against" (no speedup is claimed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuner.space.baselines import ROLE_LABELS


def baseline_names(roles: tuple[str, ...] | list[str]) -> str:
    """``framework defaults and vendor settings``: the baselines ``roles`` as words."""
    return " and ".join(ROLE_LABELS.get(role, role) for role in roles)


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
    #: The baselines that failed (no measurement of theirs exists) ...
    failed_baselines: tuple[str, ...] = ()
    #: ... and those that ran: the answer and its speedups are stated against these only.
    compared_with: tuple[str, ...] = ()

    @property
    def interval(self) -> dict[str, float] | None:
        if self.low is None or self.high is None:
            return None
        return {"mean": self.value, "low": self.low, "high": self.high}

    @property
    def basis(self) -> str:
        """What the value rests on, and what it was compared with when a baseline failed:
        ``confirmed over 5 interleaved rounds, against the vendor settings only (the
        framework defaults failed)``; ``unconfirmed: the search value of 2 single runs,
        with nothing to compare against (both baselines failed)``."""
        failed = ("" if not self.failed_baselines else "both baselines failed"
                  if len(self.failed_baselines) == 2
                  else f"the {baseline_names(self.failed_baselines)} failed")
        ran = baseline_names(self.compared_with)
        if self.confirmed:
            text = f"confirmed over {self.runs} interleaved rounds"
            if failed and ran:
                return f"{text}, against the {ran} only ({failed})"
        else:
            text = (f"unconfirmed: the search value of {self.runs} single "
                    f"run{'s' if self.runs != 1 else ''}")
            if not failed:
                return f"{text}, not compared side by side"
            if ran:
                return f"{text}, not compared side by side with the {ran} ({failed})"
        if failed:
            return f"{text}, with nothing to compare against ({failed})"
        return text

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
                "basis": self.basis, "label": self.label,
                "failed_baselines": list(self.failed_baselines),
                "compared_with": list(self.compared_with)}


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
