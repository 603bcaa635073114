"""Baselines that failed: which, why, and the last lines of their output, read back from the
trials' ``runs``; and the one sentence every surface (``tuner report``, the API, the
dashboard, the note for Optuna's tools) says about them.

A study whose program needs a flag fails both baselines (neither passes it); the search
then finds configurations that run, but there is nothing to compare them with. The report
says so plainly instead of "no configuration beat the baselines", and states the answer
against the baseline that ran, or with nothing to compare against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from tuner.results.answer import baseline_names
from tuner.space.baselines import ROLE_LABELS
from tuner.store.attributes import REASON, ROLE, RUNS

#: How many of the last lines of a failed baseline's output the surfaces show.
TAIL_LINES = 10


@dataclass(frozen=True, kw_only=True)
class FailedBaseline:
    """A baseline none of whose trials completed, and at least one of which failed."""

    role: str
    trial: int
    reason: str
    #: The last lines of the output of its failed run (``TAIL_LINES`` at most).
    tail: tuple[str, ...]

    @property
    def label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    @property
    def line(self) -> str:
        """``framework defaults (trial 0: exited with status 1)``"""
        return f"{self.label} (trial {self.trial}: {self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "label": self.label, "trial": self.trial,
                "reason": self.reason, "tail": list(self.tail)}


def _tail(trial: FrozenTrial) -> tuple[str, ...]:
    runs = RUNS.get(trial.user_attrs)
    failed = [run for run in runs if run.status != "ok"] or runs
    if not failed:
        return ()
    tail = failed[-1].tail
    lines = tail.splitlines() if isinstance(tail, str) else list(tail)
    return tuple(lines[-TAIL_LINES:])


def _reason(trial: FrozenTrial) -> str:
    reason = REASON.get(trial.user_attrs)
    if reason:
        return reason
    runs = RUNS.get(trial.user_attrs)
    return next((r.reason for r in reversed(runs) if r.reason), "") or "failed"


def failed_baselines(trials: Iterable[FrozenTrial]) -> dict[str, FailedBaseline]:
    """The baselines of ``trials`` (live trials, in order) that failed: none of their trials
    completed, none is still waiting or running, and at least one failed (the last is
    shown). A baseline the study does not run, or that has not run yet, is not failed."""
    by_role: dict[str, list[FrozenTrial]] = {}
    for trial in trials:
        role = ROLE.get(trial.user_attrs)
        if role in ROLE_LABELS:
            by_role.setdefault(role, []).append(trial)
    out: dict[str, FailedBaseline] = {}
    for role in ROLE_LABELS:
        states = {t.state for t in by_role.get(role, [])}
        if states & {TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING}:
            continue
        failed = [t for t in by_role.get(role, []) if t.state == TrialState.FAIL]
        if failed:
            last = failed[-1]
            out[role] = FailedBaseline(role=role, trial=last.number, reason=_reason(last),
                                       tail=_tail(last))
    return out


def statement(failed: dict[str, FailedBaseline], ran: Iterable[str], *,
              answered: bool) -> str:
    """The sentence about failed baselines ("" when none failed): which failed and why,
    and what the answer and speedups are compared with instead."""
    if not failed:
        return ""
    ran = [role for role in ROLE_LABELS if role in set(ran)]
    whys = [f"the {f.line}" for f in failed.values()]
    if len(failed) == 2:
        head = f"Both baselines failed: {whys[0]} and {whys[1]}."
    else:
        only = next(iter(failed.values()))
        head = f"The {only.label} baseline failed (trial {only.trial}: {only.reason})."
    if ran:
        return (f"{head} Speedups and the answer are stated against the "
                f"{baseline_names(ran)} only.")
    if answered:
        return (f"{head} No baseline ran: the answer is the best search trial, with nothing "
                "to compare against, and no speedup is claimed.")
    return f"{head} No baseline ran, and no other trial completed."
