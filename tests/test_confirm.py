"""The confirmation's recommendation: the best measured win over every baseline; without
one, the best estimate among the entries not measured a loss (a baseline or a candidate,
for which no win is claimed)."""

from __future__ import annotations

from typing import Any

from tuner.goal import MAXIMIZE, MINIMIZE
from tuner.study.confirmation import choose, winner


def entry(label: str, median: float, **verdicts: str) -> dict[str, Any]:
    return {"label": label, "median": median,
            "speedups": {role: {"verdict": v} for role, v in verdicts.items()}}


def test_without_a_measured_win_the_best_estimate_is_recommended_and_says_so() -> None:
    entries = [entry("defaults", 124.1, vendor="win"), entry("vendor", 118.0),
               entry("trial 9", 128.0, defaults="no measurable difference", vendor="win")]
    assert choose(entries, goal=MAXIMIZE) == ("trial 9", "best estimate")


def test_a_candidate_measured_a_loss_is_never_the_best_estimate() -> None:
    entries = [entry("defaults", 124.1), entry("vendor", 118.0, defaults="loss"),
               entry("trial 9", 128.0, defaults="no measurable difference", vendor="loss"),
               entry("trial 4", 120.0, defaults="inconclusive", vendor="inconclusive")]
    assert choose(entries, goal=MAXIMIZE) == ("defaults", "baseline")


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
