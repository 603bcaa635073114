"""The confirmation's recommendation: a candidate only when it is a measured win over every
baseline; otherwise the better baseline (the demo's case: nothing beats the defaults)."""

from __future__ import annotations

from typing import Any

from tuner.goal import MAXIMIZE, MINIMIZE
from tuner.study.confirmation import winner


def entry(label: str, median: float, **verdicts: str) -> dict[str, Any]:
    return {"label": label, "median": median,
            "speedups": {role: {"verdict": v} for role, v in verdicts.items()}}


def test_a_higher_median_that_is_no_measured_win_does_not_beat_the_defaults() -> None:
    entries = [entry("defaults", 124.1, vendor="win"), entry("vendor", 118.0),
               entry("trial 9", 128.0, defaults="no measurable difference", vendor="win")]
    assert winner(entries, goal=MAXIMIZE) == "defaults"


def test_the_best_measured_win_is_recommended() -> None:
    entries = [entry("defaults", 100.0), entry("vendor", 101.0),
               entry("trial 3", 130.0, defaults="win", vendor="win"),
               entry("trial 5", 140.0, defaults="win", vendor="no measurable difference"),
               entry("trial 7", 120.0, defaults="win", vendor="win")]
    assert winner(entries, goal=MAXIMIZE) == "trial 3"


def test_for_a_latency_lower_is_better() -> None:
    entries = [entry("defaults", 10.0), entry("vendor", 9.0),
               entry("trial 2", 8.0, defaults="win", vendor="loss")]
    assert winner(entries, goal=MINIMIZE) == "vendor"


def test_nothing_ran_means_no_winner() -> None:
    assert winner([{"label": "defaults", "speedups": {}}], goal=MAXIMIZE) is None
