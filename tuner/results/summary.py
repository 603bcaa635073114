"""What a study found, read back from the study database: the recommended knobs (the
confirmed winner when confirmation ran), speedups over both baselines with 95% intervals,
the noise floor, inert knobs with their evidence, knob importance, how much of the space was
explored, failed or pruned trials with their reasons, what the baselines' processes loaded
(threading and allocator libraries, framework build), and the baselines that failed (the
answer and speedups are then stated against the one that ran, or against nothing)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.execution.launch import Launch
from tuner.goal import Goal
from tuner.results.answer import Answer, Confirmed, confirmed_entries
from tuner.results.baselines import FailedBaseline, failed_baselines, statement
from tuner.space.baselines import ROLE_LABELS
from tuner.space.search_space import config_key
from tuner.store.attributes import (
    CONFIRMATION,
    DUPLICATE_OF,
    FINGERPRINT,
    LAUNCH,
    LOADED,
    NOISE,
    REASON,
    ROLE,
    SAMPLES,
    SCREENING,
    SPACE,
    SYSTEM_BEFORE,
    UNIT,
    applied_of,
    spec_of,
)
from tuner.store.database import abandoned, counted_trials, live_trials
from tuner.store.sampled import with_sampler_params
from tuner.store.values import Loaded


@dataclass(frozen=True, kw_only=True)
class TrialView:
    number: int
    state: str
    role: str
    value: float | None
    applied: dict[str, Any]
    samples: list[float]
    reason: str
    launch: Launch | None
    #: The earlier trial whose measurement this one reused (same configuration).
    duplicate_of: int | None = None
    #: What its workload's process loaded (libraries, framework build), if it was read.
    loaded: Loaded | None = None

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialView:
        attrs = trial.user_attrs
        stored = LAUNCH.get(attrs)
        return cls(number=trial.number, state=trial.state.name.lower(),
                   role=ROLE.get(attrs), value=trial.value,
                   applied=applied_of(attrs, trial.params), samples=SAMPLES.get(attrs),
                   reason=REASON.get(attrs),
                   launch=Launch.from_dict(stored) if stored is not None else None,
                   duplicate_of=DUPLICATE_OF.get(attrs), loaded=LOADED.get(attrs))


@dataclass(frozen=True, kw_only=True)
class Summary:
    name: str
    workload: str
    metric: str
    unit: str
    goal: Goal
    planned: int | None
    counted: int
    states: dict[str, int]
    #: The recommendation: the confirmed winner if confirmation ran, else the best trial.
    best: TrialView | None
    #: What every surface shows as the best (value, interval, basis): see ``tuner.results.answer``.
    answer: Answer | None
    confirmed: bool
    #: Confirmed speedups of the best over each baseline (ratio, low, high, verdict), or
    #: plain ratios of single search values when there is no confirmation.
    speedups: dict[str, dict[str, Any]]
    best_interval: dict[str, float] | None
    baselines: dict[str, TrialView]
    explored: int
    space_size: int
    samples: int
    failures: list[TrialView] = field(default_factory=list)
    abandoned: dict[int, str] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=dict)
    screening: dict[str, Any] = field(default_factory=dict)
    confirmation: dict[str, Any] = field(default_factory=dict)
    #: The confirmation's configurations with their intervals (for the chart).
    confirmed_entries: list[Confirmed] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    #: Baselines that failed (none of their trials completed), with reason and output tail.
    failed_baselines: dict[str, FailedBaseline] = field(default_factory=dict)
    #: The system knobs' values on the machine before the study changed any.
    system_before: dict[str, Any] = field(default_factory=dict)

    @property
    def compared_with(self) -> tuple[str, ...]:
        """The baselines that ran: the only ones the answer and speedups are stated against."""
        return tuple(role for role in ROLE_LABELS if role in self.baselines)

    @property
    def baseline_statement(self) -> str:
        """The sentence about failed baselines ("" when none failed)."""
        return statement(self.failed_baselines, self.compared_with,
                         answered=self.answer is not None)

    @property
    def maximize(self) -> bool:
        return self.goal.maximize

    @property
    def best_value(self) -> float | None:
        """The answer's value: the confirmed mean once confirmed, else the search value."""
        return self.answer.value if self.answer else None

    @property
    def inert(self) -> dict[str, str]:
        return {k: v["evidence"] for k, v in self.screening.items() if v.get("inert")}

    def ratio(self, value: float, reference: float) -> float:
        """How many times better ``value`` is than ``reference`` (inf over nothing)."""
        if not (reference if self.goal.maximize else value):
            return float("inf")
        return self.goal.ratio(value, reference)


def _value(trial: FrozenTrial) -> float:
    return float(trial.value) if trial.value is not None else float("nan")


def _workload_label(workload: dict[str, Any]) -> str:
    if workload.get("builtin"):
        params = workload.get("params", {})
        extra = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        return f"{workload['builtin']}" + (f" {extra}" if extra else "")
    command = [Path(str(part)).name if i < 2 else str(part)
               for i, part in enumerate(workload.get("command", []))]
    return " ".join(command[:4]) + (" ..." if len(command) > 4 else "")


#: What a malformed stored attribute (rewritten by hand, say) raises in ``summarize``.
MALFORMED = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


def why_unreadable(exc: BaseException) -> str:
    """One line saying why a study cannot be summarised (for lists and errors)."""
    first = (str(exc).splitlines() or [""])[0][:200]
    return f"cannot be summarised: {type(exc).__name__}: {first}"


def summarize(study: optuna.Study) -> Summary:
    attrs = study.user_attrs
    spec = spec_of(attrs)
    goal = Goal.of(study.direction)
    metric = str(spec.get("objective", {}).get("metric", "value"))
    unit = UNIT.get(attrs)
    trials = live_trials(study)
    by_number = {t.number: t for t in trials}
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    baselines = {ROLE.get(t): TrialView.of(t) for t in complete if ROLE.get(t) in ROLE_LABELS}
    confirmation = CONFIRMATION.get(attrs)
    failed = failed_baselines(trials)
    ran = tuple(r for r in ROLE_LABELS if r in baselines)
    best: TrialView | None = None
    answer: Answer | None = None
    speedups: dict[str, dict[str, Any]] = {}
    interval = None
    winner = confirmation.winner if confirmation is not None else None
    if winner is not None and (winner.get("trial") not in by_number
                               or not winner.get("throughput")):
        winner = None
    if confirmation is not None and winner is not None:
        best = TrialView.of(by_number[winner["trial"]])
        speedups = dict(winner.get("speedups", {}))
        interval = dict(winner["throughput"])
        answer = Answer(trial=best.number, role=best.role, knobs=best.applied,
                        value=float(interval["mean"]), low=float(interval["low"]),
                        high=float(interval["high"]), unit=unit, metric=metric,
                        confirmed=True, runs=int(confirmation.rounds or sum(
                            v is not None for v in winner.get("values", []))),
                        failed_baselines=tuple(failed), compared_with=ran)
    elif complete:
        top = goal.best_of(complete, key=_value)
        best = TrialView.of(top)
        if best.duplicate_of is not None and best.duplicate_of in by_number:
            best = TrialView.of(by_number[best.duplicate_of])  # the trial that measured it
        for role, view in baselines.items():
            if view.value is not None and best.value is not None and view.number != best.number:
                speedups[role] = {"ratio": goal.ratio(best.value, view.value)}
        answer = Answer(trial=best.number, role=best.role, knobs=best.applied,
                        value=_value(top), unit=unit, metric=metric, confirmed=False,
                        runs=len(best.samples), failed_baselines=tuple(failed),
                        compared_with=ran)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    configs = {config_key(applied_of(t.user_attrs, t.params))
               for t in trials if t.state != TrialState.WAITING}
    noise, screening = NOISE.get(attrs), SCREENING.get(attrs)
    stored = confirmation.to_dict() if confirmation is not None else {}
    return Summary(
        name=study.study_name, workload=_workload_label(spec.get("workload", {})),
        metric=metric, unit=unit, goal=goal,
        planned=spec.get("budget", {}).get("n_trials"), counted=len(counted_trials(study)),
        states=states, best=best, answer=answer, confirmed=winner is not None,
        speedups=speedups, best_interval=interval, baselines=baselines, explored=len(configs),
        space_size=int(SPACE.get(attrs).get("size", 0)),
        samples=sum(len(SAMPLES.get(t)) for t in trials),
        failures=[TrialView.of(t) for t in trials
                  if t.state in (TrialState.FAIL, TrialState.PRUNED)],
        abandoned=abandoned(study), noise=noise.to_dict() if noise is not None else {},
        screening=screening.to_dict() if screening is not None else {},
        confirmation=stored, confirmed_entries=confirmed_entries(stored),
        fingerprint=FINGERPRINT.get(attrs), failed_baselines=failed,
        system_before=SYSTEM_BEFORE.get(attrs))


def importance(study: optuna.Study) -> dict[str, float]:
    """Knob importance by Optuna's PED-ANOVA evaluator over the completed trials ({} when
    there are too few, or no knob varies), the baselines at the points the sampler sees.
    A knob screening fixed as inert is left out: the search never varied it, so what it
    would show is only which baseline set it.

    Not fANOVA: it needs scikit-learn, and with scikit-learn installed every TensorFlow
    workload of the environment imports it (Keras's scikit-learn wrapper), 0.6 s more
    start-up and an OpenMP runtime loaded into the very processes being measured."""
    complete = [t for t in live_trials(study) if t.state == TrialState.COMPLETE]
    if len(complete) < 4:
        return {}
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optuna.importance.get_param_importances(
                with_sampler_params(study), evaluator=evaluator, normalize=True)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    screening = SCREENING.get(study)
    inert = set(screening.inert) if screening is not None else set()
    kept = {k: float(v) for k, v in result.items() if k not in inert}
    total = sum(kept.values())
    return {k: v / total for k, v in kept.items()} if total > 0 else {}
