"""Stopping trials that are clearly worse than the best so far, from per-interval metrics.

The default pruner for noisy benchmarks (``noise``) prunes a trial when the median of its
intervals so far lies below the best completed value by more than both a fixed ``margin``
and three standard errors of the interval noise measured on this machine (the noise floor's
within-run spread, divided by the square root of the intervals seen). One unlucky interval
on a busy machine therefore never prunes a good configuration, while a configuration at half
the best throughput stops after its first ``min_intervals`` intervals. Baselines are never
pruned: they are the references everything is compared with.
"""

from __future__ import annotations

import math
import statistics

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from tuner.goal import Goal
from tuner.spec.models import PrunerSpec
from tuner.store import snapshot
from tuner.store.attributes import NOISE

DEFAULT_INTERVAL_CV = 0.05


class NoisePruner(BasePruner):
    def __init__(self, *, margin: float = 0.10, min_intervals: int = 2,
                 interval_cv: float | None = None) -> None:
        self.margin = margin
        self.min_intervals = min_intervals
        self.interval_cv = interval_cv

    def threshold(self, best: float, intervals_seen: int, goal: Goal,
                  interval_cv: float) -> float:
        """The value below (above, when minimizing) which a trial is pruned."""
        relative = max(self.margin, 3.0 * interval_cv / math.sqrt(intervals_seen))
        return goal.bound(best, relative)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        values = list(trial.intermediate_values.values())
        if len(values) < self.min_intervals:
            return False
        try:
            best = snapshot.best_value(study)
        except ValueError:
            return False  # nothing completed yet
        interval_cv = self.interval_cv
        if interval_cv is None:
            noise = NOISE.get(study)
            interval_cv = (noise.interval_cv if noise and noise.interval_cv is not None
                           else DEFAULT_INTERVAL_CV)
        goal = Goal.of(study.direction)
        estimate = statistics.median(values)
        limit = self.threshold(best, len(values), goal, interval_cv)
        return not goal.at_least_as_good(estimate, limit)


def make_pruner(spec: PrunerSpec) -> BasePruner:
    if spec.name == "noise":
        return NoisePruner(margin=spec.margin, min_intervals=spec.min_intervals)
    if spec.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3,
                                           n_warmup_steps=spec.min_intervals - 1)
    if spec.name == "percentile":
        return optuna.pruners.PercentilePruner(spec.percentile, n_startup_trials=3,
                                               n_warmup_steps=spec.min_intervals - 1)
    if spec.name == "successive_halving":
        # rungs at min_intervals, x3, x9 ... intervals: a trial goes on to the next rung only
        # while it is in the best third of the trials that reached it
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=spec.min_intervals,
                                                      reduction_factor=3)
    if spec.name == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(p_threshold=0.1,
                                             n_startup_steps=spec.min_intervals)
    return optuna.pruners.NopPruner()
