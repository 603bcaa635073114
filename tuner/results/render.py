"""A study's summary as text for people (``tuner report``, the progress lines) and the three
ways ``tuner best`` prints the recommendation (env, json, shell)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuner.execution.launch import Launch
from tuner.execution.libraries import summary_line
from tuner.results.answer import baseline_names
from tuner.results.summary import Summary
from tuner.space.baselines import ROLE_LABELS


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4g} {unit}".strip()


def format_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x ({(ratio - 1) * 100:+.1f}%)"


def format_speedup(speedup: dict[str, Any]) -> str:
    if "low" not in speedup:
        return f"{format_ratio(speedup['ratio'])} (single unconfirmed samples)"
    text = f"{speedup['ratio']:.2f}x [{speedup['low']:.2f}, {speedup['high']:.2f}]"
    if speedup["verdict"] == "inconclusive":
        return text + (f" — inconclusive: the interval is still +/-{speedup['half_width']:.1%} "
                       "wide when the round budget ran out, too wide to tell a difference "
                       "from none (confirm.max_rounds buys more rounds)")
    if speedup["verdict"] == "no measurable difference":
        return text + (f" — no measurable difference (inside the {speedup['floor']:.1%} noise "
                       "floor or the interval holds 1x): not a win")
    return text + (" — a measured win" if speedup["verdict"] == "win" else " — slower")


def precision_lines(confirmation: dict[str, Any]) -> list[str]:
    """What precision the sequential confirmation reached, and whether its target was met."""
    precision = confirmation.get("precision")
    if not precision or precision.get("reached") is None:
        return []
    rounds = confirmation.get("rounds")
    text = (f"  Precision: +/-{precision['reached']:.1%} after {rounds} interleaved rounds "
            f"(target +/-{precision['target']:.1%}")
    if precision.get("settled"):
        return [text + ": met; the intervals stay valid however early the rounds stopped)"]
    why = precision.get("why_not") or "not met: the round budget ran out"
    return [text + f": {why}; a comparison wider than the target is inconclusive, not "
            "'no difference')"]


def baseline_lines(summary: Summary) -> list[str]:
    """The failed baselines: the statement, then each one's reason and output tail."""
    if not summary.failed_baselines:
        return []
    lines = [summary.baseline_statement]
    for failed in summary.failed_baselines.values():
        lines.append(f"  {failed.label} failed (trial {failed.trial}): {failed.reason}; "
                     + ("the last lines of its output:" if failed.tail else "no output."))
        lines += [f"    | {line}" for line in failed.tail]
    return lines


def loaded_lines(summary: Summary) -> list[str]:
    """What each baseline's process loaded, one line each (none when nothing was read):
    ``Loaded by the framework defaults (trial 0): libgomp, allocator default; build: ...``"""
    lines = []
    for role, view in summary.baselines.items():
        loaded = view.loaded
        if loaded is not None and (loaded.known or loaded.build):
            lines.append(f"Loaded by the {ROLE_LABELS.get(role, role)} (trial {view.number}): "
                         f"{summary_line(loaded.libraries, loaded.build)}")
    return lines


def render(summary: Summary, *, written: Path | None = None,
           importances: dict[str, float] | None = None) -> str:
    lines = [f"Study {summary.name} ({summary.workload}): {summary.counted} trials"
             + (f" of {summary.planned} planned" if summary.planned else "")
             + " — " + ", ".join(f"{n} {s}" for s, n in sorted(summary.states.items()))]
    noise = summary.noise
    if noise:
        lines.append(f"Noise floor: runs of the defaults vary by {noise['run_cv']:.1%} (CV of "
                     f"{len(noise['samples'])} runs), intervals within a run by "
                     f"{noise['interval_cv']:.1%}")
        if noise.get("warning"):
            lines.append(f"Warning: {noise['warning']}")
    lines += loaded_lines(summary)
    if summary.system_before:
        lines.append("System settings before the study (put back after every trial): "
                     + ", ".join(f"{k}={v}" for k, v in summary.system_before.items()))
    for name, result in summary.screening.items():
        lines.append(f"Screening {name}: {result.get('evidence', '')}")
    lines += baseline_lines(summary)
    best, answer = summary.best, summary.answer
    if best is None or answer is None:
        lines.append("No trial completed: nothing to recommend. Failures:")
        lines += [f"  trial {f.number} ({f.state}): {f.reason}" for f in summary.failures[:10]]
        return "\n".join(lines)
    lines.append(f"Best: {summary.metric} {answer.label}")
    width = max((len(k) for k in best.applied), default=0)
    for key, value in sorted(best.applied.items()):
        note = " (inert: left at default)" if key in summary.inert else ""
        lines.append(f"  {key:<{width}} = {value}{note}")
    if not best.applied:
        lines.append("  (no knob set: the framework defaults)")
    if summary.confirmation.get("choice") == "best estimate":
        lines.append("  (recommended as the confirmation's best estimate: no win over the "
                     "baselines is claimed for it, none measured it slower)")
    baselines_left = {e["label"]: e["dropped"] for e in summary.confirmation.get("entries", [])
                      if e["label"] in ROLE_LABELS and e.get("dropped")}
    for role, speedup in summary.speedups.items():
        why = f" ({role} {baselines_left[role]})" if role in baselines_left else ""
        lines.append(f"Speedup over {ROLE_LABELS[role]}: {format_speedup(speedup)}{why}")
    if summary.confirmed and summary.speedups:
        count = int(summary.confirmation.get("comparisons", 1))
        kind = f"simultaneous over the {count} comparisons" if count > 1 else (
            "one comparison")
        lines.append(f"  (95% intervals, {kind} of the confirmation: paired interleaved "
                     "rounds, Student t on log-ratios)")
        lines += precision_lines(summary.confirmation)
    ran = summary.compared_with
    if not ran and summary.failed_baselines:
        lines.append("No speedup is claimed: no baseline ran to compare against.")
    elif summary.confirmed and not any(s.get("verdict") == "win"
                                       for s in summary.speedups.values()):
        lines.append("No configuration measurably beat the baselines on this machine."
                     if not summary.failed_baselines else
                     f"No configuration measurably beat the {baseline_names(ran)} on this "
                     "machine (the only baseline that ran).")
    reference = ran[0] if ran else "defaults"
    others = [e for e in summary.confirmation.get("entries", [])
              if e["label"] not in (summary.confirmation.get("best"), *ROLE_LABELS)
              and e.get("speedups", {}).get(reference)]
    for entry in others:
        left = f" ({entry['dropped']})" if entry.get("dropped") else ""
        lines.append(f"  candidate {entry['label']}: "
                     f"{format_speedup(entry['speedups'][reference])} over {reference}{left}")
    if importances:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in importances.items())
        lines.append(f"Knob importance (PED-ANOVA): {shown}")
    pruned = summary.states.get("pruned", 0)
    lines.append(f"Explored {summary.explored} of {summary.space_size} configurations; "
                 f"{summary.samples} samples taken; {pruned} trials pruned.")
    if best.launch is not None:
        lines.append(f"Launch: {best.launch.shell_line()}")
    failed = [f for f in summary.failures if f.state == "fail"]
    if failed:
        lines.append(f"Failed trials: {len(failed)}")
        lines += [f"  trial {f.number}: {f.reason}" for f in failed[:5]]
    if summary.abandoned:
        lines.append(f"Abandoned and retried (not counted): trials "
                     f"{', '.join(map(str, sorted(summary.abandoned)))}")
    if written is not None:
        lines.append(f"Settings written to {written}/best.env, best.json and best.sh")
    return "\n".join(lines)


def env_lines(launch: Launch, applied: Mapping[str, Any]) -> list[str]:
    """The settings of ``launch`` as ``export`` lines (the thread pools as TensorFlow's
    variables where the launch set them as flags), and its binding as a comment."""
    lines = launch.export_lines()
    for knob, variable in (("inter_op", "TF_NUM_INTEROP_THREADS"),
                           ("intra_op", "TF_NUM_INTRAOP_THREADS")):
        value = applied.get(knob)
        if value is not None and variable not in launch.env and value != "unset":
            lines.append(f"export {variable}={value}")
    if launch.prefix:
        lines.append(f"# bind with: {' '.join(launch.prefix)} <program>")
    return lines + _system_comment(launch)


def _system_comment(launch: Launch) -> list[str]:
    if not launch.system:
        return []
    return ["# system settings it ran with (tuner put them back after each trial; to keep "
            "them, apply as root and persist with sysctl/tuned):", *launch.system_lines()]


def best_as(summary: Summary, fmt: str) -> str:
    """The recommendation as ``env`` (export lines), ``json`` or ``shell`` (a launch line)."""
    best = summary.best
    if best is None or best.launch is None:
        raise ValueError("no completed trial yet")
    launch = best.launch
    if fmt == "shell":
        return launch.shell_line()
    if fmt == "env":
        answer = summary.answer
        lines = [f"# {summary.name}: {'confirmed' if summary.confirmed else 'unconfirmed'} "
                 f"best of {summary.counted} trials (trial {best.number})"
                 + (f": {summary.metric} {answer.value_text}" if answer else "")]
        return "\n".join(lines + env_lines(launch, best.applied))
    if fmt == "json":
        return json.dumps({
            "study": summary.name, "metric": summary.metric, "value": summary.best_value,
            "label": summary.answer.label if summary.answer else None,
            "unit": summary.unit, "confirmed": summary.confirmed,
            "interval": summary.best_interval, "samples": best.samples, "trial": best.number,
            "knobs": best.applied, "speedups": summary.speedups,
            "inert": summary.inert, "noise_floor": summary.noise.get("floor"),
            "launch": launch.to_dict(), "shell": launch.shell_line(),
            # what `tuner ci --previous best.json` compares the environment with
            "environment": summary.fingerprint,
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
    system = _system_comment(summary.best.launch)
    (out / "best.sh").write_text("#!/bin/sh\n" + "".join(f"{line}\n" for line in system)
                                 + best_as(summary, "shell") + "\n")
    (out / "best.sh").chmod(0o755)
    return out
