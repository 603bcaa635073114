"""Confirmation: after the search, the top candidates and both baselines run again in
interleaved rounds, and every speedup is reported as a ratio with a 95% interval. The
study's best is the configuration that wins *here*, under the same conditions as its rivals,
not the luckiest single sample of the search. If no candidate beats the better baseline,
that baseline is the recommendation.

The result is the study attribute ``confirmation``; it is redone when trials were added
after it (a resumed study).
"""

from __future__ import annotations

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
from tuner.study.trial import study_floor


def choose_entries(study: optuna.Study, top: int) -> list[Entry]:
    """Both baselines, then the best ``top`` distinct configurations of the search."""
    goal = Goal.of(study.direction)
    complete = [t for t in live_trials(study) if t.state == TrialState.COMPLETE]
    entries: list[Entry] = []
    seen: set[str] = set()
    for role in ROLE_LABELS:
        trial = next((t for t in complete if ROLE.get(t) == role), None)
        if trial is not None:
            applied = APPLIED.get(trial) or {}
            entries.append(Entry(label=role, applied=applied, trial=trial.number))
            seen.add(config_key(applied))
    ranked: list[FrozenTrial] = goal.ranked(
        (t for t in complete if ROLE.get(t) == "search" and t.value is not None),
        key=lambda t: float(t.value or 0.0))
    for trial in ranked:
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
    say(f"confirming: {spec.rounds} interleaved rounds of "
        f"{', '.join(e.label for e in entries)}")
    run_rounds(measurer, entries, spec.rounds)
    result = compare(entries, floor=study_floor(study),
                     goal=Goal.of(measurer.space.spec.objective.direction))
    result["at_trials"] = counted
    result["rounds"] = spec.rounds
    CONFIRMATION.put(study, Confirmation.from_dict(result))
    return result


def compare(entries: list[Entry], *, floor: float, goal: Goal) -> dict[str, Any]:
    """The confirmation's record: speedups of every entry over each baseline with
    simultaneous intervals, throughput intervals, and the winner."""
    # every entry against each baseline, the baselines against each other once
    comparisons = sum(1 for e in entries for b in entries
                      if b.label in ROLE_LABELS and b is not e) - (
        1 if sum(e.label in ROLE_LABELS for e in entries) == 2 else 0)
    level = stats.simultaneous_level(comparisons)
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
                item["speedups"][role] = stats.paired_speedup(
                    a, b, floor=floor, goal=goal, level=level).to_dict()
        out.append(item)
    best = winner(out, goal=goal)
    return {"entries": out, "best": best, "floor": floor, "level": level,
            "comparisons": comparisons}


def winner(entries: list[dict[str, Any]], *, goal: Goal) -> str | None:
    """The label of the recommendation: the candidate with the best median among those
    measured a win over every baseline; without one, the better baseline (no candidate
    beat it here); without a baseline that ran, the best median."""
    ran = [e for e in entries if "median" in e]

    def best_of(pool: list[dict[str, Any]]) -> str | None:
        if not pool:
            return None
        return str(goal.best_of(pool, key=lambda e: float(e["median"]))["label"])

    bases = [e for e in ran if e["label"] in ROLE_LABELS]
    wins = [e for e in ran if e["label"] not in ROLE_LABELS and all(
        e["speedups"].get(b["label"], {}).get("verdict") == "win" for b in bases)]
    return best_of(wins) or best_of(bases) or best_of(ran)
