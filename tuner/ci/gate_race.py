"""The gate's measurement: the deployed settings and their rivals (the baselines, the
re-tune's candidates) in interleaved rounds, examined at the sequential looks of
``tuner.study.sequential`` until every comparison of the deployed settings is decided
against the threshold (``tuner.ci.verdict``) or the rounds run out."""

from __future__ import annotations

import math
from typing import Any

from tuner import stats
from tuner.ci.verdict import Comparison, decided, standing
from tuner.goal import Goal
from tuner.study.interleave import Entry, paired, run_rounds
from tuner.study.measure import Measurer
from tuner.study.sequential import Looks, Stopped, run_looks

#: The label of the deployed settings among the entries.
DEPLOYED = "deployed"


class GateRace:
    """``deployed`` against each of ``rivals`` (those labelled in ``candidates`` are the
    re-tune's), judged against ``threshold`` at every look."""

    def __init__(self, deployed: Entry, rivals: list[Entry], *, threshold: float,
                 goal: Goal, candidates: frozenset[str] = frozenset()) -> None:
        self.deployed = deployed
        self.rivals = rivals
        self.entries = [*rivals, deployed]
        self.threshold = threshold
        self.goal = goal
        self.candidates = candidates
        self.level = 0.95
        self.rounds = 0
        self.judged: list[Comparison] = []

    @property
    def comparisons(self) -> int:
        return len(self.rivals)

    def add_rounds(self, measurer: Measurer, count: int) -> None:
        run_rounds(measurer, self.entries, count)

    def judge(self, level: float) -> list[Comparison]:
        self.level = level
        self.judged = [self._compare(rival, level) for rival in self.rivals]
        return self.judged

    def settled(self, level: float) -> bool:
        return decided(self.judge(level), self.threshold)

    def _compare(self, rival: Entry, level: float) -> Comparison:
        a, b = paired(self.deployed, rival)
        candidate = rival.label in self.candidates
        if len(a) < 2:
            return Comparison(rival=rival.label, ratio=math.nan, low=math.nan, high=math.nan,
                              standing="open", candidate=candidate)
        speedup = stats.paired_speedup(a, b, floor=self.threshold, goal=self.goal, level=level)
        return Comparison(rival=rival.label, ratio=speedup.ratio, low=speedup.low,
                          high=speedup.high, candidate=candidate,
                          standing=standing(speedup.ratio, speedup.low, speedup.high,
                                            self.threshold))

    def run(self, measurer: Measurer, looks: Looks) -> Stopped:
        stopped = run_looks(looks, add_rounds=lambda n: self.add_rounds(measurer, n),
                            settled=self.settled, comparisons=self.comparisons)
        self.rounds = stopped.rounds
        return stopped

    def speedup_over(self, label: str, reference: str) -> dict[str, Any] | None:
        """The paired speedup of entry ``label`` over entry ``reference`` at the last look's
        level (None when fewer than 2 rounds paired)."""
        by_label = {e.label: e for e in self.entries}
        if label not in by_label or reference not in by_label:
            return None
        a, b = paired(by_label[label], by_label[reference])
        if len(a) < 2:
            return None
        return stats.paired_speedup(a, b, floor=self.threshold, goal=self.goal,
                                    level=self.level).to_dict()


def edge(now: dict[str, Any] | None, then: dict[str, Any] | None,
         level: float = 0.95) -> dict[str, float] | None:
    """The ratio of two speedups over the same baseline measured in different runs (now over
    then), with an approximate ``level`` interval: each interval's log half-width gives its
    standard error (``rounds - 1`` degrees of freedom at its own level), the errors add in
    quadrature, and the fewer degrees of freedom of the two set the quantile. None when
    either is missing or has no usable interval."""
    if not now or not then:
        return None
    try:
        parts = [(math.log(float(s["ratio"])), _standard_error(s)) for s in (now, then)]
        dof = min(int(now.get("rounds") or 2), int(then.get("rounds") or 2)) - 1
    except (KeyError, TypeError, ValueError):
        return None
    (m_now, se_now), (m_then, se_then) = parts
    half = stats.t_quantile(max(1, dof), level) * math.hypot(se_now, se_then)
    mean = m_now - m_then
    return {"ratio": math.exp(mean), "low": math.exp(mean - half),
            "high": math.exp(mean + half), "level": level}


def _standard_error(speedup: dict[str, Any]) -> float:
    low, high = float(speedup["low"]), float(speedup["high"])
    if not (0 < low <= high):
        raise ValueError("no interval")
    rounds = int(speedup.get("rounds") or 2)
    level = float(speedup.get("level") or 0.95)
    return (math.log(high) - math.log(low)) / 2 / stats.t_quantile(max(1, rounds - 1), level)
