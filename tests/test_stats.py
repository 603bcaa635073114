"""Statistics: robust values, the noise floor, and speedup intervals that hold their 95%."""

from __future__ import annotations

import math
import random

import pytest

from tuner import stats
from tuner.goal import MINIMIZE


def test_cv_trimmed_mean_and_robust() -> None:
    assert stats.cv([10.0, 10.0, 10.0]) == 0.0
    assert stats.cv([9.0, 11.0]) == pytest.approx(math.sqrt(2) / 10)
    assert stats.cv([5.0]) == 0.0
    assert stats.trimmed_mean([1, 2, 3, 4, 100], 0.2) == pytest.approx(3.0)
    assert stats.robust([1, 2, 3, 4, 100]) == 3.0
    assert stats.robust([1, 2, 3, 4, 100], "trimmed_mean") == pytest.approx(3.0)
    with pytest.raises(ValueError):
        stats.robust([])


def test_noise_floor_and_warning() -> None:
    floor = stats.noise_floor([100, 110, 90, 105, 95], [[99, 101], [110, 111], [88, 92]])
    assert floor.run_cv == pytest.approx(stats.cv([100, 110, 90, 105, 95]))
    assert 0 < floor.interval_cv < 0.05
    assert stats.noise_warning(floor, limit=0.10) is None
    loud = stats.noise_floor([100, 150, 70, 130], [])
    warning = stats.noise_warning(loud, limit=0.10)
    assert warning and "other load" in warning and "frequency scaling" in warning
    assert "SMT" in warning


def test_paired_speedup_is_the_geometric_mean_of_paired_ratios() -> None:
    cand, ref = [110.0, 121.0, 99.0], [100.0, 110.0, 90.0]
    s = stats.paired_speedup(cand, ref, floor=0.02)
    assert s.ratio == pytest.approx(1.1)
    assert s.low == pytest.approx(1.1) and s.high == pytest.approx(1.1)  # no spread at all
    assert s.verdict == "win"
    latency = stats.paired_speedup([9.0, 10.0], [10.0, 11.0], floor=0.02, goal=MINIMIZE)
    assert latency.ratio > 1.0  # lower latency is better


def test_verdicts_refuse_to_call_noise_a_win() -> None:
    assert stats.verdict(1.03, 1.01, 1.05, floor=0.06) == "no measurable difference"
    assert stats.verdict(1.10, 1.02, 1.19, floor=0.06) == "win"
    assert stats.verdict(1.10, 0.98, 1.22, floor=0.06) == "no measurable difference"
    assert stats.verdict(0.80, 0.75, 0.86, floor=0.06) == "loss"


def test_intervals_cover_the_true_ratio_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    true_ratio, rounds, trials, covered = 1.15, 5, 2000, 0
    for _ in range(trials):
        ref, cand = [], []
        for _ in range(rounds):
            drift = math.exp(rng.gauss(0, 0.05))  # shared by both runs of the round
            ref.append(100 * drift * math.exp(rng.gauss(0, 0.04)))
            cand.append(100 * true_ratio * drift * math.exp(rng.gauss(0, 0.04)))
        s = stats.paired_speedup(cand, ref, floor=0.05)
        covered += s.low <= true_ratio <= s.high
    assert 0.93 <= covered / trials <= 0.97


def test_simultaneous_intervals_keep_false_wins_rare() -> None:
    """Five configurations that are really the same, 6% noise, 4 rounds: the confirmation
    compares 7 pairs; with simultaneous intervals a 'win' or 'loss' on pure noise shows up
    in at most about 5% of confirmations (per-pair 95% intervals: about 30%)."""
    from tuner.goal import MAXIMIZE
    from tuner.study.confirmation import compare
    from tuner.study.interleave import Entry

    rng = random.Random(3)
    false = 0
    runs = 400
    for _ in range(runs):
        entries = [Entry(label=label, applied={}) for label in
                   ("defaults", "vendor", "trial 3", "trial 7", "trial 9")]
        for _ in range(4):
            drift = math.exp(rng.gauss(0, 0.03))
            for entry in entries:
                entry.values.append(1000 * drift * math.exp(rng.gauss(0, 0.06)))
        floor = stats.cv(entries[0].ok_values())
        result = compare(entries, floor=floor, goal=MAXIMIZE)
        assert result["comparisons"] == 7
        verdicts = [s["verdict"] for e in result["entries"] for s in e["speedups"].values()]
        false += any(v != "no measurable difference" for v in verdicts)
    assert false / runs <= 0.06


def test_mean_interval() -> None:
    iv = stats.mean_interval([10.0, 12.0, 11.0, 13.0])
    assert iv.low < 11.5 < iv.high and iv.contains(11.5) and not iv.contains(20)
    assert stats.mean_interval([5.0]).low == 5.0


def test_t_quantiles() -> None:
    assert stats.t_quantile(1) == pytest.approx(12.706, rel=1e-3)
    assert stats.t_quantile(4) == pytest.approx(2.776, rel=1e-3)
    assert stats.t_quantile(100) == pytest.approx(1.984, rel=1e-3)
    with pytest.raises(ValueError):
        stats.t_quantile(0)
