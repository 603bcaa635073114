"""What a study found, read back from the study database: the best knobs, the improvement
over each baseline, how much of the space was explored, and the failures with their reasons.
Also the three ways ``tuner best`` prints the best settings (env, json, shell)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.launch import Launch
from tuner.store import abandoned, counted_trials, live_trials

ROLE_LABELS = {"defaults": "framework defaults", "vendor": "vendor settings"}


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

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialView:
        attrs = trial.user_attrs
        launch = Launch.from_dict(attrs["launch"]) if "launch" in attrs else None
        return cls(number=trial.number, state=trial.state.name.lower(),
                   role=str(attrs.get("role", "search")), value=trial.value,
                   applied=dict(attrs.get("applied", trial.params)),
                   samples=list(attrs.get("samples", [])), reason=str(attrs.get("reason", "")),
                   launch=launch)


@dataclass(frozen=True, kw_only=True)
class Summary:
    name: str
    workload: str
    metric: str
    unit: str
    maximize: bool
    planned: int | None
    counted: int
    states: dict[str, int]
    best: TrialView | None
    baselines: dict[str, TrialView]
    explored: int
    space_size: int
    samples: int
    failures: list[TrialView] = field(default_factory=list)
    abandoned: dict[int, str] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def ratio(self, value: float, reference: float) -> float:
        """How many times better ``value`` is than ``reference`` (>1 is better)."""
        if self.maximize:
            return value / reference if reference else float("inf")
        return reference / value if value else float("inf")

    def improvements(self) -> dict[str, float]:
        if self.best is None or self.best.value is None:
            return {}
        return {role: self.ratio(self.best.value, view.value)
                for role, view in self.baselines.items() if view.value is not None}


def _value(trial: FrozenTrial) -> float:
    return float(trial.value) if trial.value is not None else float("nan")


def summarize(study: optuna.Study) -> Summary:
    attrs = study.user_attrs
    spec = attrs.get("spec", {})
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = live_trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = (max if maximize else min)(complete, key=_value) if complete else None
    baselines: dict[str, TrialView] = {}
    for trial in complete:
        role = trial.user_attrs.get("role")
        if role in ROLE_LABELS:
            baselines[role] = TrialView.of(trial)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    configs = {json.dumps(t.user_attrs.get("applied", t.params), sort_keys=True, default=str)
               for t in trials if t.state != TrialState.WAITING}
    workload = spec.get("workload", {})
    return Summary(
        name=study.study_name,
        workload=_workload_label(workload),
        metric=spec.get("objective", {}).get("metric", "value"),
        unit=str(attrs.get("unit", "")),
        maximize=maximize,
        planned=spec.get("budget", {}).get("n_trials"),
        counted=len(counted_trials(study)),
        states=states,
        best=TrialView.of(best) if best else None,
        baselines=baselines,
        explored=len(configs),
        space_size=int(attrs.get("space", {}).get("size", 0)),
        samples=sum(len(t.user_attrs.get("samples", [])) for t in trials),
        failures=[TrialView.of(t) for t in trials
                  if t.state in (TrialState.FAIL, TrialState.PRUNED)],
        abandoned=abandoned(study),
        fingerprint=dict(attrs.get("fingerprint", {})),
    )


def _workload_label(workload: dict[str, Any]) -> str:
    if workload.get("builtin"):
        params = workload.get("params", {})
        extra = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        return f"{workload['builtin']}" + (f" {extra}" if extra else "")
    command = [Path(str(part)).name if i < 2 else str(part)
               for i, part in enumerate(workload.get("command", []))]
    return " ".join(command[:4]) + (" ..." if len(command) > 4 else "")


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4g} {unit}".strip()


def format_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x ({(ratio - 1) * 100:+.1f}%)"


def render(summary: Summary, *, written: Path | None = None) -> str:
    lines = [f"Study {summary.name} ({summary.workload}): {summary.counted} trials"
             + (f" of {summary.planned} planned" if summary.planned else "")
             + " — " + ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items()))]
    best = summary.best
    if best is None:
        lines.append("No trial completed: nothing to recommend. Failures:")
        lines += [f"  trial {f.number} ({f.state}): {f.reason}" for f in summary.failures[:10]]
        return "\n".join(lines)
    spread = ""
    if len(best.samples) > 1:
        spread = f", median of {len(best.samples)} samples {min(best.samples):.4g}..." \
                 f"{max(best.samples):.4g}"
    lines.append(f"Best: trial {best.number} ({best.role}), {summary.metric} "
                 f"{fmt_value(best.value, summary.unit)}{spread}")
    width = max((len(k) for k in best.applied), default=0)
    for key, value in sorted(best.applied.items()):
        lines.append(f"  {key:<{width}} = {value}")
    for role, view in summary.baselines.items():
        ratio = summary.improvements().get(role)
        if ratio is not None:
            lines.append(f"Improvement over {ROLE_LABELS[role]} "
                         f"({fmt_value(view.value, summary.unit)}, trial {view.number}): "
                         f"{format_ratio(ratio)}")
    lines.append(f"Explored {summary.explored} of {summary.space_size} configurations; "
                 f"{summary.samples} samples taken.")
    if best.launch is not None:
        lines.append(f"Launch: {best.launch.shell_line()}")
    if summary.failures:
        lines.append(f"Failed or stopped trials: {len(summary.failures)}")
        for view in summary.failures[:5]:
            lines.append(f"  trial {view.number} ({view.state}): {view.reason}")
    if summary.abandoned:
        lines.append(f"Abandoned and retried (not counted): trials "
                     f"{', '.join(map(str, sorted(summary.abandoned)))}")
    if written is not None:
        lines.append(f"Settings written to {written}/best.env, best.json and best.sh")
    return "\n".join(lines)


def best_as(summary: Summary, fmt: str) -> str:
    """The best settings as ``env`` (export lines), ``json`` or ``shell`` (a launch line)."""
    best = summary.best
    if best is None or best.launch is None:
        raise ValueError("no completed trial yet")
    launch = best.launch
    if fmt == "shell":
        return launch.shell_line()
    if fmt == "env":
        lines = [f"# {summary.name}: best of {summary.counted} trials, "
                 f"{summary.metric} {fmt_value(best.value, summary.unit)}"]
        lines += launch.export_lines()
        for knob, variable in (("inter_op", "TF_NUM_INTEROP_THREADS"),
                               ("intra_op", "TF_NUM_INTRAOP_THREADS")):
            value = best.applied.get(knob)
            if value is not None and variable not in launch.env and value != "unset":
                lines.append(f"export {variable}={value}")
        if launch.prefix:
            lines.append(f"# bind with: {' '.join(launch.prefix)} <program>")
        return "\n".join(lines)
    if fmt == "json":
        return json.dumps({
            "study": summary.name,
            "metric": summary.metric,
            "value": best.value,
            "unit": summary.unit,
            "samples": best.samples,
            "trial": best.number,
            "knobs": best.applied,
            "improvement": summary.improvements(),
            "launch": launch.to_dict(),
            "shell": launch.shell_line(),
        }, indent=2, sort_keys=True, default=str)
    raise ValueError(f"unknown format {fmt!r}; expected env, json or shell")


def write_best(summary: Summary, directory: Path) -> Path | None:
    """Write best.env, best.json and best.sh under ``directory/<study>``."""
    if summary.best is None or summary.best.launch is None:
        return None
    out = directory / summary.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "best.env").write_text(best_as(summary, "env") + "\n")
    (out / "best.json").write_text(best_as(summary, "json") + "\n")
    (out / "best.sh").write_text("#!/bin/sh\n" + best_as(summary, "shell") + "\n")
    (out / "best.sh").chmod(0o755)
    return out


def median(values: list[float]) -> float:
    return float(statistics.median(values))
