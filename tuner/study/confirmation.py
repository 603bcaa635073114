"""Confirmation: after the search, the top candidates and both baselines run again in
interleaved rounds, and every speedup is reported as a ratio with a 95% interval. The
study's best is the configuration that wins *here*, under the same conditions as its rivals,
not the luckiest single sample of the search. If no candidate beats the better baseline,
that baseline is the recommendation.

The rounds are sequential (``tuner.study.sequential``): ``confirm.rounds`` first, then more
at each look (about 1.5 times as many) up to ``confirm.max_rounds``, stopping at the first
look where every interval still compared is narrower than the target precision
(``confirm.precision``; ``auto``: the noise floor, at least 2%; the baselines' ratio to
each other counts only while a baseline may be the answer). At each look a candidate
measurably slower than the leading candidate, or the same as it within 2%, leaves the race,
and so does a baseline whose intervals against the candidates still racing are within the
target once a candidate is a measured win over every baseline; the intervals of an entry
that left are reported as they stood at that look (at its level), and the rounds go to the
comparisons still open. A comparison that shows no difference but is still wider than the
target when the round budget runs out is ``inconclusive``, not "no difference"; the record
states the precision reached.

The result is the study attribute ``confirmation``; it is redone when trials were added
after it (a resumed study).
"""

from __future__ import annotations

import math
import socket
import statistics
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner import stats
from tuner.goal import Goal
from tuner.space.baselines import ROLE_LABELS
from tuner.space.search_space import config_key
from tuner.store.attributes import APPLIED, CONFIRMATION, ROLE
from tuner.store.database import claim, counted_trials, live_trials
from tuner.store.gate import StudyGate
from tuner.store.values import Confirmation
from tuner.study.events import Say, ignore
from tuner.study.interleave import Entry, paired, run_rounds
from tuner.study.measure import Measurer
from tuner.study.sequential import (
    PRECISION_FLOOR,
    Looks,
    Stopped,
    half_width,
    run_looks,
    target_precision,
)
from tuner.study.trial import study_floor


def choose_entries(study: optuna.Study, top: int) -> list[Entry]:
    """Both baselines, then the best ``top`` distinct configurations of the search."""
    goal = Goal.of(study.direction)
    trials = live_trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    entries: list[Entry] = []
    seen: set[str] = set()
    for role in ROLE_LABELS:
        trial = next((t for t in complete if ROLE.get(t) == role), None)
        if trial is not None:
            applied = APPLIED.get(trial) or {}
            entries.append(Entry(label=role, applied=applied, trial=trial.number))
            seen.add(config_key(applied))
    for trial in ranked_candidates(trials, goal):
        applied = APPLIED.get(trial) or {}
        key = config_key(applied)
        if key in seen:
            continue
        seen.add(key)
        entries.append(Entry(label=f"trial {trial.number}", applied=applied,
                             trial=trial.number))
        if len(entries) - len(ROLE_LABELS) >= top:
            break
    return entries


def ranked_candidates(trials: list[FrozenTrial], goal: Goal) -> list[FrozenTrial]:
    """The search trials among ``trials`` by value, the completed ones first, then the
    pruned ones by the last value they reported. A pruned trial was stopped because it
    looked worse than the best so far, and that best may itself have been a lucky run (a
    baseline measured high): when it was, every later trial is pruned against it, and a
    confirmation of the completed trials alone would have nothing to confirm."""
    search = [t for t in trials if ROLE.get(t) == "search" and t.value is not None]
    ranked: list[FrozenTrial] = []
    for state in (TrialState.COMPLETE, TrialState.PRUNED):
        ranked += goal.ranked((t for t in search if t.state == state),
                              key=lambda t: float(t.value or 0.0))
    return ranked


def confirm(study: optuna.Study, measurer: Measurer, *, gate: StudyGate,
            say: Say = ignore) -> dict[str, Any] | None:
    """Confirm once per state of the study, by the one worker that claims the job."""
    spec = measurer.space.spec.confirm
    if spec.top == 0:
        return None
    counted = len(counted_trials(study))
    previous = CONFIRMATION.get(study)
    if previous and previous.at_trials == counted:
        return previous.to_dict()
    if not claim(study, gate, f"confirmation-{counted}", socket.gethostname(),
                 timeout=measurer.settings.claim_timeout):
        return None
    entries = choose_entries(study, spec.top)
    if len(entries) < 2:
        return None
    floor = study_floor(study)
    looks = Looks.growing(spec.rounds, max(spec.rounds, spec.max_rounds))
    race = Race(entries, floor=floor, goal=Goal.of(measurer.space.spec.objective.direction),
                target=target_precision(spec.precision, floor), looks=looks,
                give_up=spec.stop_out_of_reach)
    say(f"confirming {', '.join(e.label for e in entries)} in interleaved rounds until every "
        f"interval is within +/-{race.target:.1%} (looks after "
        f"{', '.join(map(str, looks.rounds))} rounds)")
    stopped = run_looks(looks, add_rounds=lambda n: race.add_rounds(measurer, n),
                        settled=race.settled, comparisons=race.comparisons)
    result = race.result(stopped, looks)
    result["at_trials"] = counted
    CONFIRMATION.put(study, Confirmation.from_dict(result))
    reached = result["precision"]["reached"]
    if reached is None:
        say(f"confirmation: no comparison could be made in {stopped.rounds} rounds "
            "(runs failed)")
    else:
        say(f"confirmation: +/-{reached:.1%} reached in {stopped.rounds} rounds "
            + ("(target met)" if result["precision"]["settled"] else
               f"(target +/-{race.target:.1%} {race.why_not()})"))
    return result


#: A look stops the race as futile when an interval still racing, projected to the last
#: look (same spread, more rounds, that look's level), would still be wider than this many
#: times the target. The spread estimated from a few rounds is itself uncertain: the
#: margin keeps a reachable target from being given up on a spread that came out high.
FUTILITY_MARGIN = 1.5


class Race:
    """The entries of one confirmation, the candidates still racing, and the rule that
    stops it: every interval among those still racing narrower than ``target`` (met), or,
    with ``give_up``, one of them too wide to get there within the looks left (out of
    reach)."""

    def __init__(self, entries: list[Entry], *, floor: float, goal: Goal,
                 target: float, looks: Looks | None = None, give_up: bool = False) -> None:
        self.entries = entries
        self.floor = floor
        self.goal = goal
        self.target = target
        #: Candidates whose interval against the leader lies within +/-margin are the same
        #: for any deployment: the target, no looser than 2% however noisy the machine.
        self.margin = min(target, PRECISION_FLOOR)
        self.looks = looks
        self.give_up = give_up
        self.met = False
        self.projected: float | None = None
        self.racing = list(entries)
        self.dropped: dict[str, str] = {}
        #: The level of the look at which each entry that left did so: its comparisons are
        #: reported at that level (the intervals the error was spent on), not the last's.
        self.left_at: dict[str, float] = {}
        self.level = 0.95
        self.rounds = 0
        candidates = sum(e.label not in ROLE_LABELS for e in entries)
        self.comparisons = baseline_comparisons(entries) + max(0, candidates - 1)

    def add_rounds(self, measurer: Measurer, count: int) -> None:
        run_rounds(measurer, self.racing, count)
        self.rounds += count
        for entry in self.entries:  # a candidate out of the race sat these rounds out
            entry.values += [None] * (self.rounds - len(entry.values))
            entry.reasons += [""] * (self.rounds - len(entry.reasons))

    def settled(self, level: float) -> bool:
        self.level = level
        self._drop_candidates()
        record = compare(self.entries, floor=self.floor, goal=self.goal, level=level,
                         left_at=self.left_at)
        widths = deciding_widths(record["entries"], {e.label for e in self.racing})
        # nothing comparable (every pairing failed): more rounds of failing runs buy nothing
        self.met = bool(widths) and max(widths) <= self.target
        if not widths or self.met:
            return True
        self._release_baselines(record["entries"])  # within the target: the widest stays
        self.projected = self._projected(max(widths), level) if self.give_up else None
        return self.projected is not None and \
            self.projected > FUTILITY_MARGIN * self.target

    @property
    def at_last_look(self) -> bool:
        """The rounds have reached the last look (never, without looks)."""
        return self.looks is not None and self.rounds >= self.looks.rounds[-1]

    def _projected(self, width: float, level: float) -> float | None:
        """``width`` (a half-width at this look) as it would be at the last look: the same
        spread over the last look's rounds, at its level. None at the last look."""
        if self.looks is None or self.at_last_look or self.rounds < 2:
            return None
        last = self.looks.rounds[-1]
        final_level = self.looks.level(len(self.looks.rounds) - 1, self.comparisons)
        scale = (stats.t_quantile(last - 1, final_level)
                 / stats.t_quantile(self.rounds - 1, level)) * math.sqrt(self.rounds / last)
        return math.exp(math.log1p(width) * scale) - 1.0

    def why_not(self) -> str:
        """Why the target was not met, for the report."""
        if self.projected is not None and self.looks is not None and not self.at_last_look:
            return (f"out of reach: after {self.rounds} rounds the widest interval would "
                    f"still be +/-{self.projected:.1%} after {self.looks.rounds[-1]}")
        return "not met: the round budget ran out"

    def _drop_candidates(self) -> None:
        """Candidates measurably slower than the leader (by median) leave the race, and so
        do those whose whole interval against it lies within ``margin``: the rounds they
        would take could not change the answer by more than that."""
        candidates = [e for e in self.racing if e.label not in ROLE_LABELS and
                      len(e.ok_values()) >= 2]
        if len(candidates) < 2:
            return
        leader = self.goal.best_of(candidates, key=lambda e: statistics.median(e.ok_values()))
        for entry in candidates:
            if entry is leader:
                continue
            a, b = paired(entry, leader)
            if len(a) < 2:
                continue
            versus = stats.paired_speedup(a, b, floor=0.0, goal=self.goal, level=self.level)
            if versus.high < 1.0:
                self._leave(entry, f"{versus} of {leader.label}")
            elif equivalent(versus, self.margin):
                self._leave(entry, f"{versus} of {leader.label}, the same within "
                                   f"+/-{self.margin:.1%}")

    def _release_baselines(self, record: list[dict[str, Any]]) -> None:
        """A baseline leaves the race once no baseline can be the answer (a candidate
        still racing is a measured win over every baseline) and its interval against each
        candidate still racing is within the target: its rounds would only narrow intervals
        already precise enough, while the rounds go on for the comparisons still open
        (typically the noisy defaults against the leader, the vendor's settled)."""
        racing = {e.label for e in self.racing}
        if self.at_last_look or not a_candidate_wins(record, racing):  # all stop there anyway
            return
        candidates = [e for e in record if e["label"] in racing
                      and e["label"] not in ROLE_LABELS]
        for entry in [e for e in self.racing if e.label in ROLE_LABELS]:
            widths = [half_width(e["speedups"][entry.label]) for e in candidates
                      if entry.label in e["speedups"]]
            if len(widths) == len(candidates) and max(widths) <= self.target:
                self._leave(entry, f"its intervals against the candidates still racing "
                                   f"within +/-{self.target:.1%}")

    def _leave(self, entry: Entry, why: str) -> None:
        self.racing.remove(entry)
        self.left_at[entry.label] = self.level
        self.dropped[entry.label] = f"left the race after {self.rounds} rounds: {why}"

    def result(self, stopped: Stopped, looks: Looks) -> dict[str, Any]:
        racing = {e.label for e in self.racing}
        # the recommendation is a baseline or a candidate that raced to the end: a candidate
        # that left sat out rounds, so its intervals are not the ones the precision was met for
        record = compare(self.entries, floor=self.floor, goal=self.goal, level=stopped.level,
                         choose_among=racing, left_at=self.left_at)
        widths = deciding_widths(record["entries"], racing)
        for entry in record["entries"]:
            if entry["label"] in self.dropped:
                entry["dropped"] = self.dropped[entry["label"]]
            for speedup in entry["speedups"].values():
                width = half_width(speedup)
                speedup["half_width"] = width
                if width > self.target and speedup["verdict"] == "no measurable difference":
                    speedup["verdict"] = "inconclusive"
        record["comparisons"] = self.comparisons
        record["rounds"] = stopped.rounds
        record["precision"] = {"target": self.target,
                               "reached": max(widths) if widths else None,
                               "settled": self.met and bool(widths),
                               "why_not": None if self.met else self.why_not(),
                               "looks": list(looks.rounds),
                               "level": stopped.level}
        return record


def deciding_widths(entries: list[dict[str, Any]], racing: set[str]) -> list[float]:
    """The half-widths the precision target is for: each comparison of an entry still
    racing with a baseline, except the baselines' comparison with each other once a
    candidate still racing is a measured win over every baseline. From then on the
    recommendation is a candidate whatever the baselines' ratio, so rounds spent narrowing
    that ratio buy nothing the answer needs (it is still reported, with its width: wider
    than the target and showing no difference, it is inconclusive). Before, a baseline may
    be the recommendation, and which one is what that comparison decides."""
    decided = a_candidate_wins(entries, racing)
    return [half_width(speedup) for e in entries if e["label"] in racing
            for role, speedup in e["speedups"].items()
            if not (decided and e["label"] in ROLE_LABELS and role in ROLE_LABELS)]


def a_candidate_wins(entries: list[dict[str, Any]], racing: set[str]) -> bool:
    """A candidate among ``racing`` is a measured win over every baseline: no baseline can
    then be the recommendation."""
    bases = [e["label"] for e in entries if e["label"] in ROLE_LABELS]
    return bool(bases) and bool(measured_wins([e for e in entries if e["label"] in racing],
                                              bases))


def measured_wins(entries: list[dict[str, Any]], bases: list[str]) -> list[dict[str, Any]]:
    """The candidates among ``entries`` measured a win over every baseline of ``bases``."""
    return [e for e in entries if e["label"] not in ROLE_LABELS and all(
        e["speedups"].get(b, {}).get("verdict") == "win" for b in bases)]


def equivalent(versus: stats.Speedup, margin: float) -> bool:
    """The interval of a ratio lies within +/-``margin`` of 1 (an equivalence test at the
    interval's level: both one-sided tests reject a difference larger than the margin)."""
    return versus.low >= 1.0 / (1.0 + margin) and versus.high <= 1.0 + margin


def baseline_comparisons(entries: list[Entry]) -> int:
    """Every entry against each baseline, the baselines against each other once."""
    return sum(1 for e in entries for b in entries
               if b.label in ROLE_LABELS and b is not e) - (
        1 if sum(e.label in ROLE_LABELS for e in entries) == 2 else 0)


def compare(entries: list[Entry], *, floor: float, goal: Goal, level: float | None = None,
            choose_among: set[str] | None = None,
            left_at: dict[str, float] | None = None) -> dict[str, Any]:
    """The confirmation's record: speedups of every entry over each baseline with
    simultaneous intervals (at ``level`` each; by default Bonferroni over the comparisons;
    a comparison with an entry that left the race at the level of the look it left at,
    ``left_at``), throughput intervals, and the winner (among the baselines and the labels
    ``choose_among``; all: None)."""
    comparisons = baseline_comparisons(entries)
    if level is None:
        level = stats.simultaneous_level(comparisons)
    left_at = left_at or {}
    baselines = {e.label: e for e in entries if e.label in ROLE_LABELS}
    out: list[dict[str, Any]] = []
    for entry in entries:
        item: dict[str, Any] = {**entry.to_dict(), "speedups": {}}
        values = entry.ok_values()
        if len(values) >= 2:
            item["throughput"] = stats.mean_interval(values).to_dict()
            item["median"] = statistics.median(values)
        for role, base in baselines.items():
            if base is entry:
                continue
            a, b = paired(entry, base)
            if len(a) >= 2:
                # the rounds they share end where the first of them left: that look's level
                at = max([level, *(left_at[x] for x in (entry.label, role) if x in left_at)])
                item["speedups"][role] = stats.paired_speedup(
                    a, b, floor=floor, goal=goal, level=at).to_dict()
        out.append(item)
    best, basis = choose([e for e in out if choose_among is None or e["label"] in choose_among
                          or e["label"] in ROLE_LABELS], goal=goal)
    return {"entries": out, "best": best, "choice": basis, "floor": floor, "level": level,
            "comparisons": comparisons}


def winner(entries: list[dict[str, Any]], *, goal: Goal) -> str | None:
    """The label of the recommendation: the candidate with the best estimated speedup among
    those measured a win over every baseline; without one, the entry with the best estimate
    among those not measured a loss against any baseline (deploying it is the better bet,
    though no win is claimed for it; often a baseline); without a baseline that ran, the
    best median."""
    return choose(entries, goal=goal)[0]


def choose(entries: list[dict[str, Any]], *, goal: Goal) -> tuple[str | None, str]:
    """``winner``'s label and the basis of the choice: ``measured win``, ``best estimate``
    (a candidate, no win claimed), ``baseline`` (a baseline's estimate was best) or
    ``best median`` (no baseline ran).

    Entries are ranked by their estimated speedup over the reference baseline (the first
    of ``ROLE_LABELS`` that ran): the paired ratio the report states for that comparison,
    so the recommendation is the entry the report shows fastest. The median of each entry
    is not used: its rounds are not paired, and with few runs a single slow run moves it
    less than it moves the throughput actually delivered (a configuration with one run in
    three at 60% speed has the best median and not the best throughput)."""
    ran = [e for e in entries if "median" in e]
    bases = [e for e in ran if e["label"] in ROLE_LABELS]
    if not bases:
        return (str(goal.best_of(ran, key=lambda e: float(e["median"]))["label"])
                if ran else None), "best median"
    reference = next(b for role in ROLE_LABELS for b in bases if b["label"] == role)

    def best_of(pool: list[dict[str, Any]]) -> str:
        return str(max(pool, key=lambda e: estimate(e, reference, goal=goal))["label"])

    wins = measured_wins(ran, [b["label"] for b in bases])
    if wins:
        return best_of(wins), MEASURED_WIN
    safe = [e for e in ran if e["label"] in ROLE_LABELS or not any(
        s.get("verdict") == "loss" for s in e["speedups"].values())]
    label = best_of(safe)
    return label, BASELINE if label in ROLE_LABELS else BEST_ESTIMATE


def estimate(entry: dict[str, Any], reference: dict[str, Any], *, goal: Goal) -> float:
    """``entry``'s estimated speedup over ``reference`` (higher is better for either goal):
    the paired ratio where one was measured, else the ratio of the medians."""
    if entry is reference:
        return 1.0
    ratio = entry["speedups"].get(reference["label"], {}).get("ratio")
    if ratio is not None:
        return float(ratio)
    return math.exp(goal.log_ratio(float(entry["median"]), float(reference["median"])))


MEASURED_WIN = "measured win"
BEST_ESTIMATE = "best estimate"
BASELINE = "baseline"
