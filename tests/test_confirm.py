"""The confirmation's recommendation: the best measured win over every baseline; without
one, the best estimate among the entries not measured a loss (a baseline or a candidate,
for which no win is claimed). "Best" is the paired speedup over the reference baseline, the
estimate the report states, not the median."""

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


def test_the_paired_estimate_ranks_not_the_median() -> None:
    """Trial 4 has the higher median (two fast runs, one at 60%); trial 8 delivers more:
    its paired speedup over the defaults is the higher, and the report shows it so."""
    entries = [entry("defaults", 100.0), entry("vendor", 98.0),
               {"label": "trial 4", "median": 125.0,
                "speedups": {"defaults": {"verdict": "win", "ratio": 1.08},
                             "vendor": {"verdict": "win", "ratio": 1.10}}},
               {"label": "trial 8", "median": 118.0,
                "speedups": {"defaults": {"verdict": "win", "ratio": 1.16},
                             "vendor": {"verdict": "win", "ratio": 1.18}}}]
    assert choose(entries, goal=MAXIMIZE) == ("trial 8", "measured win")


def test_without_a_defaults_run_the_vendor_is_the_reference() -> None:
    entries = [entry("vendor", 100.0),
               {"label": "trial 2", "median": 90.0,
                "speedups": {"vendor": {"verdict": "no measurable difference",
                                        "ratio": 1.02}}}]
    assert choose(entries, goal=MAXIMIZE) == ("trial 2", "best estimate")


def test_pruned_trials_are_confirmed_when_too_few_completed() -> None:
    """A baseline measured high (a lucky run) prunes every search trial against it; the
    confirmation then races the best pruned trials rather than confirming nothing."""
    import optuna
    from optuna.trial import TrialState

    from tuner.store.attributes import APPLIED, ROLE
    from tuner.study.confirmation import choose_entries

    study = optuna.create_study(direction="maximize")

    def add(role: str, applied: dict[str, int], value: float, state: TrialState) -> None:
        trial = study.ask()
        ROLE.put(trial, role)
        APPLIED.put(trial, applied)
        trial.report(value, 1)
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)

    add("defaults", {}, 258.0, TrialState.COMPLETE)
    add("vendor", {"intra_op": 2}, 212.0, TrialState.COMPLETE)
    for number, value in enumerate((140.0, 223.0, 157.0, 204.0)):
        add("search", {"intra_op": 10 + number}, value, TrialState.PRUNED)
    add("search", {"intra_op": 9}, 150.0, TrialState.COMPLETE)
    labels = [e.label for e in choose_entries(study, top=3)]
    # the completed trial first, then the pruned ones by the value they reached
    assert labels == ["defaults", "vendor", "trial 6", "trial 3", "trial 5"]
