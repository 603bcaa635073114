"""The noise-aware pruner on an in-memory Optuna study."""

from __future__ import annotations

import optuna
import pytest

from tuner.spec.models import PrunerSpec
from tuner.study.pruning import NoisePruner, make_pruner


def study_with_best(value: float, direction: str = "maximize",
                    interval_cv: float | None = None) -> optuna.Study:
    study = optuna.create_study(direction=direction, pruner=optuna.pruners.NopPruner())
    if interval_cv is not None:
        study.set_user_attr("noise", {"interval_cv": interval_cv})
    trial = study.ask()
    study.tell(trial, value)
    return study


def frozen_with(study: optuna.Study, values: list[float]) -> optuna.trial.FrozenTrial:
    trial = study.ask()
    for step, value in enumerate(values, start=1):
        trial.report(value, step)
    return study._storage.get_trial(trial._trial_id)


def test_prunes_clearly_worse_after_min_intervals() -> None:
    study = study_with_best(1000.0, interval_cv=0.02)
    pruner = NoisePruner(margin=0.10, min_intervals=2)
    assert not pruner.prune(study, frozen_with(study, [500.0]))  # one interval: too early
    assert pruner.prune(study, frozen_with(study, [500.0, 510.0]))
    assert not pruner.prune(study, frozen_with(study, [950.0, 940.0]))  # within the margin


def test_noisy_intervals_widen_the_margin() -> None:
    quiet = study_with_best(1000.0, interval_cv=0.02)
    noisy = study_with_best(1000.0, interval_cv=0.15)
    pruner = NoisePruner(margin=0.10, min_intervals=2)
    values = [820.0, 840.0]  # 17% below the best
    assert pruner.prune(quiet, frozen_with(quiet, values))
    assert not pruner.prune(noisy, frozen_with(noisy, values))  # 3 * 0.15 / sqrt(2) = 32%


def test_minimize_direction() -> None:
    study = study_with_best(10.0, direction="minimize", interval_cv=0.01)
    pruner = NoisePruner(margin=0.10, min_intervals=2)
    assert pruner.prune(study, frozen_with(study, [15.0, 16.0]))
    assert not pruner.prune(study, frozen_with(study, [10.5, 10.2]))


def test_nothing_completed_never_prunes() -> None:
    study = optuna.create_study(direction="maximize")
    assert not NoisePruner().prune(study, frozen_with(study, [1.0, 1.0, 1.0]))


@pytest.mark.parametrize("name,cls", [("noise", NoisePruner),
                                      ("median", optuna.pruners.MedianPruner),
                                      ("percentile", optuna.pruners.PercentilePruner),
                                      ("wilcoxon", optuna.pruners.WilcoxonPruner),
                                      ("none", optuna.pruners.NopPruner)])
def test_pruner_choice(name: str, cls: type) -> None:
    assert isinstance(make_pruner(PrunerSpec(name=name)), cls)
