"""Sequential comparisons: intervals that hold however early the rounds stop, and the
confirmation's race that stops at a target precision."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from tuner import stats
from tuner.execution.outcome import Outcome, Status
from tuner.goal import MAXIMIZE
from tuner.space.baselines import ROLE_LABELS
from tuner.study.confirmation import Race
from tuner.study.interleave import Entry
from tuner.study.sequential import Looks, half_width, run_looks, target_precision


def test_looks_grow_to_the_budget_and_spend_the_error_once() -> None:
    looks = Looks.growing(4, 12)
    assert looks.rounds == (4, 6, 9, 12)
    assert Looks.stepping(4, 2, 10).rounds == (4, 6, 8, 10)
    assert Looks.growing(5, 5).rounds == (5,)
    spent = sum(1 - looks.level(k, 3) for k in range(len(looks.rounds))) * 3
    assert spent == pytest.approx(0.05)
    assert looks.level(0, 1) > looks.level(3, 1)  # the last look gets the most error


def test_target_precision() -> None:
    assert target_precision("auto", 0.08) == 0.08
    assert target_precision("auto", 0.004) == 0.02
    assert target_precision(0.03, 0.08) == 0.03


@dataclass
class SimulatedPair:
    """Two configurations whose true ratio is ``true_ratio``, measured in rounds under a
    common drift, compared as the confirmation does."""

    noise: float
    true_ratio: float
    target: float
    rng: random.Random
    every_round: bool = False
    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    final: stats.Speedup | None = None

    def add(self, count: int) -> None:
        for _ in range(count):
            drift = math.exp(self.rng.gauss(0, 0.05))
            self.b.append(100 * drift * math.exp(self.rng.gauss(0, self.noise)))
            self.a.append(100 * self.true_ratio * drift * math.exp(self.rng.gauss(0, self.noise)))

    def settled(self, level: float) -> bool:
        speedup = stats.paired_speedup(self.a, self.b, floor=0.0,
                                       level=0.95 if self.every_round else level)
        self.final = speedup
        return half_width(speedup) <= self.target or speedup.low > 1 or speedup.high < 1


def sequential_coverage(noise: float, *, runs: int, true_ratio: float, target: float,
                        seed: int, every_round: bool = False) -> tuple[float, float]:
    """Share of simulated sequential comparisons whose final interval holds the true ratio,
    and the mean rounds spent. The rounds stop at the first look where the interval is
    within ``target`` or excludes 1 (or at 12). ``every_round``: the naive procedure, a
    plain 95% interval looked at after every round."""
    rng = random.Random(seed)
    looks = Looks(tuple(range(3, 13))) if every_round else Looks.growing(4, 12)
    covered = 0
    spent = 0
    for _ in range(runs):
        pair = SimulatedPair(noise, true_ratio, target, rng, every_round)
        stopped = run_looks(looks, add_rounds=pair.add, settled=pair.settled, comparisons=1)
        spent += stopped.rounds
        assert pair.final is not None
        covered += pair.final.low <= true_ratio <= pair.final.high
    return covered / runs, spent / runs


@pytest.mark.parametrize("noise", [0.02, 0.06, 0.12])
def test_sequential_intervals_cover_the_true_ratio(noise: float) -> None:
    """At three noise levels (per-run spread 2%, 6%, 12%), stopping as soon as the interval
    is precise or decided, the final interval holds the true ratio in at least 95% of
    studies."""
    coverage, rounds = sequential_coverage(noise, runs=1500, true_ratio=1.04, target=0.03,
                                           seed=int(noise * 1000))
    assert coverage >= 0.95, (coverage, rounds)
    assert 4 <= rounds <= 12


def test_looking_after_every_round_at_95_percent_is_not_valid() -> None:
    """Why the looks spend the error: the naive sequential procedure misses more often."""
    naive, _ = sequential_coverage(0.12, runs=1500, true_ratio=1.0, target=0.03, seed=9,
                                   every_round=True)
    valid, _ = sequential_coverage(0.12, runs=1500, true_ratio=1.0, target=0.03, seed=9)
    assert naive < 0.93 < 0.95 <= valid


@dataclass
class FakeMeasurer:
    """Answers each configuration (``applied['x']`` is its true throughput) with noise."""

    noise: float
    seed: int = 0
    metric: str = "throughput"
    runs: list[str] = field(default_factory=list)
    #: A noise of its own for some configurations (by true throughput).
    noise_of: dict[float, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def run(self, applied: dict[str, Any], **_: Any) -> Outcome:
        self.runs.append(str(applied["x"]))
        noise = self.noise_of.get(float(applied["x"]), self.noise)
        value = float(applied["x"]) * math.exp(self.rng.gauss(0, noise))
        return Outcome(status=Status.OK, reason="", metrics={self.metric: value})


def race_of(values: dict[str, float], *, noise: float, target: float, most: int,
            seed: int = 1, give_up: bool = False,
            noise_of: dict[float, float] | None = None) -> tuple[dict[str, Any], FakeMeasurer]:
    entries = [Entry(label=label, applied={"x": x}) for label, x in values.items()]
    looks = Looks.growing(4, most)
    race = Race(entries, floor=0.01, goal=MAXIMIZE, target=target, looks=looks,
                give_up=give_up)
    measurer = FakeMeasurer(noise=noise, seed=seed, noise_of=noise_of or {})
    stopped = run_looks(looks, add_rounds=lambda n: race.add_rounds(measurer, n),  # type: ignore[arg-type]
                        settled=race.settled, comparisons=race.comparisons)
    return race.result(stopped, looks), measurer


def test_the_race_stops_at_the_target_precision_and_drops_the_slower() -> None:
    record, measurer = race_of({"defaults": 100.0, "vendor": 101.0, "trial 3": 140.0,
                                "trial 5": 100.0}, noise=0.01, target=0.03, most=12)
    precision = record["precision"]
    assert precision["settled"] and precision["reached"] <= 0.03
    assert record["rounds"] < 12  # stopped at an early look
    entries = {e["label"]: e for e in record["entries"]}
    assert "left the race" in entries["trial 5"]["dropped"]
    assert entries["trial 3"]["speedups"]["defaults"]["verdict"] == "win"
    assert record["best"] == "trial 3"
    assert measurer.runs.count("100.0") < measurer.runs.count("140.0") + record["rounds"]


def test_candidates_the_same_within_two_percent_leave_the_race() -> None:
    """Noisy defaults (6% run noise; a +/-10% target) and three quiet candidates of one true
    throughput: once a candidate's whole interval against the leader lies within +/-2% it
    stops taking rounds (nothing it could show would change the answer by more) while the
    rounds go on for the baselines' intervals; the answer is a candidate that raced on."""
    values = {"defaults": 100.0, "vendor": 101.0, "trial 3": 140.0, "trial 5": 140.01,
              "trial 7": 139.99}
    record, measurer = race_of(values, noise=0.003, target=0.1, most=12,
                               noise_of={100.0: 0.06, 101.0: 0.06})
    entries = {e["label"]: e for e in record["entries"]}
    left = [label for label in ("trial 3", "trial 5", "trial 7") if "dropped" in entries[label]]
    assert len(left) == 2
    assert all("the same within +/-2.0%" in entries[label]["dropped"] for label in left)
    assert record["best"] not in left and record["best"].startswith("trial")
    stayed = str(values[record["best"]])
    assert all(measurer.runs.count(str(values[label])) < measurer.runs.count(stayed)
               for label in left)
    assert measurer.runs.count(stayed) == record["rounds"]
    assert record["precision"]["settled"]


def test_the_baselines_ratio_counts_only_while_a_baseline_may_be_the_answer() -> None:
    """Noisy baselines (2% run noise each) and a quiet candidate: their ratio to each other
    is the widest interval. Once the candidate is a measured win over both, the
    recommendation is the candidate whatever that ratio is, so the race stops when the
    candidate's own intervals reach the target and reports the baselines' ratio as it stands
    (inconclusive); with a candidate that is no win, a baseline may be the answer, and the
    rounds go on for that ratio."""
    baselines = {"defaults": 100.0, "vendor": 101.0}
    noisy = {100.0: 0.02, 101.0: 0.02}
    record, _ = race_of({**baselines, "trial 3": 140.0}, noise=0.003, target=0.03, most=12,
                        seed=4, noise_of=noisy)
    entries = {e["label"]: e for e in record["entries"]}
    between = entries["vendor"]["speedups"]["defaults"]
    assert record["precision"]["settled"] and record["rounds"] < 12
    assert between["half_width"] > 0.03 and between["verdict"] == "inconclusive"
    assert record["precision"]["reached"] == max(
        s["half_width"] for s in entries["trial 3"]["speedups"].values())
    assert record["best"] == "trial 3"
    record, _ = race_of({**baselines, "trial 3": 100.5}, noise=0.003, target=0.03, most=12,
                        seed=4, noise_of=noisy)
    entries = {e["label"]: e for e in record["entries"]}
    assert record["rounds"] == 12 and not record["precision"]["settled"]
    assert record["precision"]["reached"] == entries["vendor"]["speedups"]["defaults"][
        "half_width"] > 0.03


def test_a_settled_baseline_leaves_the_race_once_a_candidate_wins() -> None:
    """Noisy defaults (2% run noise), quiet vendor settings and candidates: once a candidate
    is a measured win over both baselines and the vendor's intervals against the candidates
    still racing are within the target, the vendor stops taking rounds while the rounds go
    on for the defaults; its comparisons are reported at the level of the look it left at
    (the intervals the error was spent on)."""
    values = {"defaults": 100.0, "vendor": 120.0, "trial 3": 140.0, "trial 5": 139.9}
    record, measurer = race_of(values, noise=0.003, target=0.02, most=12, seed=1,
                               noise_of={100.0: 0.02})
    entries = {e["label"]: e for e in record["entries"]}
    vendor = entries["vendor"]
    assert vendor["dropped"].startswith("left the race after ")
    assert "its intervals against the candidates still racing within +/-2.0%" in vendor["dropped"]
    assert measurer.runs.count("120.0") < measurer.runs.count("100.0") == record["rounds"]
    best = entries[record["best"]]
    assert best["speedups"]["vendor"]["verdict"] == "win"
    assert best["speedups"]["vendor"]["half_width"] <= 0.02
    assert best["speedups"]["vendor"]["level"] > best["speedups"]["defaults"]["level"] == \
        record["precision"]["level"]
    assert "dropped" not in entries["defaults"]
    # a race that ends at its last look without the target: nobody "leaves" at that look
    record, _ = race_of(values, noise=0.003, target=0.02, most=6, seed=1,
                        noise_of={100.0: 0.03, 120.0: 0.006})
    assert not record["precision"]["settled"] and record["rounds"] == 6
    assert not any("left the race after 6" in e.get("dropped", "") for e in record["entries"]
                   if e["label"] in ROLE_LABELS)


def test_no_baseline_leaves_while_a_baseline_may_be_the_answer() -> None:
    """The same race with candidates no faster than the vendor's settings: a baseline may be
    the answer, so both baselines race to the end."""
    values = {"defaults": 100.0, "vendor": 120.0, "trial 3": 120.0, "trial 5": 119.9}
    record, measurer = race_of(values, noise=0.003, target=0.02, most=12, seed=1,
                               noise_of={100.0: 0.02})
    assert not any("dropped" in e for e in record["entries"] if e["label"] in ROLE_LABELS)
    assert measurer.runs.count("120.0") >= 2 * record["rounds"] - 1


def test_an_interval_wider_than_two_percent_is_not_called_the_same() -> None:
    """At 8% run noise two candidates 1% apart cannot be told apart in 12 rounds, nor shown
    to be the same: both race to the end."""
    record, _ = race_of({"defaults": 100.0, "trial 3": 140.0, "trial 5": 141.4},
                        noise=0.08, target=0.08, most=12, seed=3)
    assert not any("the same within" in e.get("dropped", "") for e in record["entries"])


def test_a_budget_spent_before_the_precision_is_inconclusive() -> None:
    record, _ = race_of({"defaults": 100.0, "vendor": 100.0, "trial 3": 101.0},
                        noise=0.15, target=0.02, most=6)
    assert not record["precision"]["settled"]
    assert record["precision"]["reached"] > 0.02
    verdicts = {s["verdict"] for e in record["entries"] for s in e["speedups"].values()}
    assert "inconclusive" in verdicts and "no measurable difference" not in verdicts


def test_a_target_out_of_reach_stops_the_race_at_once_and_says_so() -> None:
    """With ``confirm.stop_out_of_reach``: at 15% run noise a +/-2% interval would take
    hundreds of rounds, the first look sees that 12 cannot get there and stops, rather than
    spending 8 more rounds; without it, the rounds go on to the budget."""
    values = {"defaults": 100.0, "vendor": 100.0, "trial 3": 130.0}
    record, _ = race_of(values, noise=0.15, target=0.02, most=12, give_up=True)
    precision = record["precision"]
    assert record["rounds"] == 4 and not precision["settled"]
    assert precision["why_not"].startswith("out of reach: after 4 rounds")
    record, _ = race_of(values, noise=0.15, target=0.02, most=12)
    assert record["rounds"] == 12
    assert record["precision"]["why_not"] == "not met: the round budget ran out"


def test_a_reachable_target_is_not_given_up() -> None:
    """At 2% noise a +/-4% target is out of reach at 4 rounds and within it by 12: the
    race goes on until it is met."""
    record, _ = race_of({"defaults": 100.0, "vendor": 100.0, "trial 3": 110.0,
                         "trial 5": 109.0}, noise=0.02, target=0.04, most=12, give_up=True)
    precision = record["precision"]
    assert record["rounds"] > 4
    assert precision["settled"] and precision["reached"] <= 0.04
    assert precision["why_not"] is None


def test_the_report_says_what_precision_was_reached_and_why_a_target_was_not_met() -> None:
    from tuner.results.render import precision_lines

    met = {"rounds": 6, "precision": {"target": 0.05, "reached": 0.041, "settled": True,
                                      "why_not": None}}
    assert precision_lines(met) == [
        "  Precision: +/-4.1% after 6 interleaved rounds (target +/-5.0%: met; the "
        "intervals stay valid however early the rounds stopped)"]
    record, _ = race_of({"defaults": 100.0, "vendor": 100.0, "trial 3": 130.0},
                        noise=0.15, target=0.02, most=12, give_up=True)
    (line,) = precision_lines(record)
    assert "after 4 interleaved rounds (target +/-2.0%: out of reach: after 4 rounds" in line
    assert line.endswith("inconclusive, not 'no difference')")
    record, _ = race_of({"defaults": 100.0, "vendor": 100.0, "trial 3": 130.0},
                        noise=0.15, target=0.02, most=6)
    (line,) = precision_lines(record)
    assert "not met: the round budget ran out" in line
