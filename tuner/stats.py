"""Statistics that keep tuner honest: the noise floor of a machine, robust trial values, and
speedups with confidence intervals from interleaved runs.

Speedup of a candidate over a baseline, from ``n`` interleaved rounds (A B A B ...: each round
runs both once, under the same conditions): the paired log-ratios ``l_i = log(a_i / b_i)``
are averaged and a Student-t 95% interval is taken on the mean, then exponentiated. The
ratio is the geometric mean of the paired ratios. Pairing cancels slow drift (thermal,
other load) that would otherwise land on whichever configuration ran during it; the t
interval is used rather than a bootstrap because with 4-8 rounds a percentile bootstrap is
too narrow (it cannot see beyond the few values it resamples).

One confirmation compares several configurations with both baselines; its intervals are
simultaneous (Bonferroni: each at 1 - 0.05/m for m comparisons), so that all of them hold
together with 95% probability and five equal configurations do not produce a "win" out of
pure noise one confirmation in three.

A difference is called a win only when the interval excludes 1 *and* the ratio is beyond the
machine's noise floor (the run-to-run coefficient of variation of the defaults baseline):
a statistically clear 2% gain on a machine whose runs spread by 8% is more likely a drift
than a setting.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tuner.goal import MAXIMIZE, Goal


def t_quantile(dof: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t (e.g. 2.776 for 4 dof at 95%)."""
    if dof < 1:
        raise ValueError("need at least 2 values for an interval")
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, dof))


def simultaneous_level(comparisons: int, level: float = 0.95) -> float:
    """Bonferroni: the per-interval level that keeps ``comparisons`` intervals jointly at
    ``level`` (so one confirmation comparing five configurations does not find a win in
    pure noise one time in three)."""
    return 1.0 - (1.0 - level) / max(1, comparisons)


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (sample standard deviation / mean); 0 for fewer than 2."""
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else math.inf


def relative_error(values: Sequence[float], minimum: int = 3) -> float:
    """Standard error of the mean over the mean (inf below ``minimum`` values)."""
    if len(values) < minimum:
        return math.inf
    mean = statistics.fmean(values)
    return statistics.stdev(values) / math.sqrt(len(values)) / mean if mean else math.inf


def trimmed_mean(values: Sequence[float], proportion: float = 0.2) -> float:
    """Mean after dropping ``proportion`` of the values at each end (at least the median)."""
    ordered = sorted(values)
    cut = int(len(ordered) * proportion)
    kept = ordered[cut:len(ordered) - cut] or ordered
    return statistics.fmean(kept)


Statistic = Literal["median", "trimmed_mean"]


def robust(values: Sequence[float], statistic: Statistic = "median") -> float:
    if not values:
        raise ValueError("no samples")
    if statistic == "median":
        return float(statistics.median(values))
    return trimmed_mean(values)


@dataclass(frozen=True, kw_only=True)
class NoiseFloor:
    """Run-to-run spread of one configuration on this machine."""

    samples: list[float]
    run_cv: float
    interval_cv: float

    @property
    def floor(self) -> float:
        """Relative difference below which two single measurements cannot be told apart."""
        return self.run_cv

    def to_dict(self) -> dict[str, object]:
        return {"samples": self.samples, "run_cv": self.run_cv,
                "interval_cv": self.interval_cv, "floor": self.floor}


def noise_floor(samples: Sequence[float], intervals: Sequence[Sequence[float]]) -> NoiseFloor:
    """From repeated runs of one configuration: their spread, and the mean spread of the
    intervals within a run (what pruning on one interval has to see through)."""
    within = [cv(run) for run in intervals if len(run) > 1]
    return NoiseFloor(samples=list(samples), run_cv=cv(samples),
                      interval_cv=statistics.fmean(within) if within else 0.0)


NOISY_CV = 0.10


def noise_warning(floor: NoiseFloor, *, limit: float = NOISY_CV) -> str | None:
    if floor.run_cv <= limit:
        return None
    return (f"this machine is too noisy to tune reliably: the same setting varies by "
            f"{floor.run_cv:.1%} from run to run (limit {limit:.0%}). Check for other load "
            f"(top, load average), CPU frequency scaling (cpupower frequency-info: use the "
            f"performance governor), SMT siblings shared with other work, and thermal "
            f"throttling; pinning the workload to cores (physcpubind) usually helps")


Verdict = Literal["win", "loss", "no measurable difference", "inconclusive"]


@dataclass(frozen=True, kw_only=True)
class Speedup:
    """How many times better a candidate is than a reference, with a 95% interval."""

    ratio: float
    low: float
    high: float
    rounds: int
    verdict: Verdict
    floor: float
    level: float = 0.95

    def __str__(self) -> str:
        text = f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}]"
        if self.verdict == "no measurable difference":
            return text + " (no measurable difference)"
        return text

    def to_dict(self) -> dict[str, object]:
        return {"ratio": self.ratio, "low": self.low, "high": self.high, "rounds": self.rounds,
                "verdict": self.verdict, "floor": self.floor, "level": self.level}


def verdict(ratio: float, low: float, high: float, floor: float) -> Verdict:
    if low > 1.0 and ratio - 1.0 > floor:
        return "win"
    if high < 1.0 and 1.0 - ratio > floor:
        return "loss"
    return "no measurable difference"


def paired_speedup(candidate: Sequence[float], reference: Sequence[float], *, floor: float,
                   goal: Goal = MAXIMIZE, level: float = 0.95) -> Speedup:
    """Speedup of ``candidate`` over ``reference`` from runs paired by round (same length),
    with a ``level`` interval. For a metric to minimize (a latency), the ratio is
    reference / candidate."""
    if len(candidate) != len(reference):
        raise ValueError("paired samples must have the same length")
    if len(candidate) < 2:
        raise ValueError("need at least 2 rounds")
    logs = [goal.log_ratio(c, r) for c, r in zip(candidate, reference, strict=True)]
    mean = statistics.fmean(logs)
    half = t_quantile(len(logs) - 1, level) * statistics.stdev(logs) / math.sqrt(len(logs))
    ratio, low, high = math.exp(mean), math.exp(mean - half), math.exp(mean + half)
    return Speedup(ratio=ratio, low=low, high=high, rounds=len(logs),
                   verdict=verdict(ratio, low, high, floor), floor=floor, level=level)


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A mean with its 95% interval (for a throughput measured several times)."""

    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


def mean_interval(values: Sequence[float]) -> Interval:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean=mean, low=mean, high=mean)
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean=mean, low=mean - half, high=mean + half)
