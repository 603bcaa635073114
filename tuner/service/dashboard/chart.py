"""The study chart, as inline SVG (no script, no CDN).

Left, the search: every trial's value in order (single runs, not compared side by side),
the best search value so far, the two baselines' search values drawn across, pruned trials
at the last value they reported, failed trials as crosses on the axis, and a trial that
reused an earlier trial's measurement (the same configuration) as a hollow mark, not as a
new measurement. Right, on the same axis, the confirmation: each configuration it compared
as its mean with the 95% interval (an error bar). The one "best" label is the study's
answer (``tuner.results.answer``): the confirmed winner, or an unconfirmed search value said to be
such.

Elements carry ``data-*`` attributes with the numbers they show, so tests (and scripts) can
read the chart. Every value placed in the markup is escaped; roles outside the known set
are drawn as "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from tuner.goal import Goal
from tuner.results.answer import Answer, Confirmed
from tuner.service.api.schemas import Trial

WIDTH, HEIGHT = 1000, 360
LEFT, TOP, BOTTOM = 70, 34, 44
PLOT_W, PANEL_W, GAP, RIGHT = 560, 190, 24, 156
ROLES = ("search", "defaults", "vendor")
COLORS = {"complete": "#1f6fb2", "best": "#1a9850", "defaults": "#e08214",
          "vendor": "#7b3294", "pruned": "#999999", "fail": "#d7301f", "reused": "#1f6fb2",
          "confirmed": "#333333", "unknown": "#555555"}


@dataclass(frozen=True)
class Axis:
    low: float
    high: float

    def ticks(self, count: int = 5) -> list[float]:
        span = self.high - self.low
        raw = span / count if span > 0 else 1.0
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.low / step) * step
        return [first + i * step for i in range(count + 2) if first + i * step <= self.high]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def attrs(**values: Any) -> str:
    """``name="value"`` pairs, every value escaped (``data_x`` is written ``data-x``)."""
    return " ".join(f'{name.rstrip("_").replace("_", "-")}="{escape(str(value), quote=True)}"'
                    for name, value in values.items() if value is not None)


def role_of(trial: Trial) -> str:
    return trial.role if trial.role in ROLES else "unknown"


def render(trials: list[Trial], *, goal: Goal, unit: str,
           baselines: dict[str, float | None], answer: Answer | None = None,
           confirmed: Sequence[Confirmed] = ()) -> str:
    values = [t.value for t in trials if t.state == "complete" and t.value is not None]
    values += [t.intervals[-1] for t in trials if t.state == "pruned" and t.intervals]
    values += [v for v in baselines.values() if v is not None]
    values += [v for c in confirmed for v in (c.low, c.high)]
    if not trials or not values:
        return ('<svg id="trials-chart" role="img" aria-label="no trial yet" width="860" '
                'height="60"><text x="10" y="35">No trial has finished yet.</text></svg>')
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    axis = Axis(low - pad, high + pad)
    count = max(t.number for t in trials) + 1
    plot_h = HEIGHT - TOP - BOTTOM
    panel_x = LEFT + PLOT_W + GAP

    def x(number: float) -> float:
        return LEFT + (number + 0.5) / count * PLOT_W

    def y(value: float) -> float:
        return TOP + (axis.high - value) / (axis.high - axis.low) * plot_h

    parts = [f'<svg id="trials-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="search '
             f'trials (single runs) and the confirmation (means with 95% intervals)">',
             f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{plot_h}" fill="#fbfbfb" '
             f'stroke="#ccc"/>',
             f'<rect x="{panel_x}" y="{TOP}" width="{PANEL_W}" height="{plot_h}" '
             f'fill="#f6faf6" stroke="#ccc"/>',
             f'<text x="{LEFT + PLOT_W / 2}" y="{TOP - 10}" text-anchor="middle" '
             f'font-size="12">search: single runs of each trial</text>',
             f'<text x="{panel_x + PANEL_W / 2}" y="{TOP - 10}" text-anchor="middle" '
             f'font-size="12">confirmation: 95% intervals</text>']
    for tick in axis.ticks():
        parts.append(f'<line x1="{LEFT}" x2="{panel_x + PANEL_W}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{escape(_fmt(tick))}</text>')
    step = max(1, math.ceil(count / 12))
    for number in range(0, count, step):
        parts.append(f'<text x="{x(number):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                     f'font-size="11">{number}</text>')
    parts.append(f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 4}" text-anchor="middle" '
                 f'font-size="12">trial</text><text x="14" y="{TOP + plot_h / 2}" '
                 f'font-size="12" transform="rotate(-90 14 {TOP + plot_h / 2})" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    for role, value in baselines.items():
        if value is None or role not in COLORS:
            continue
        parts.append(f'<line class="baseline" {attrs(data_role=role, data_value=value)} '
                     f'x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="{COLORS[role]}" stroke-dasharray="6 4" '
                     f'stroke-width="1.5"><title>{escape(role)}: search value '
                     f'{escape(_fmt(value))} (single runs)</title></line>')
    parts += _search(trials, goal, x, y, count)
    parts += _confirmation(confirmed, y, panel_x)
    if answer is not None:
        parts.append(_answer(answer, y(answer.value), panel_x + PANEL_W + 6))
    parts.append("</svg>")
    return "".join(parts)


def _search(trials: list[Trial], goal: Goal, x: Any, y: Any, count: int) -> list[str]:
    parts: list[str] = []
    best: float | None = None
    steps: list[tuple[float, float]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == "complete" and trial.value is not None and trial.duplicate_of is None:
            if best is None or goal.better(trial.value, best):
                if steps:  # hold the previous best up to this trial, then step
                    steps.append((x(trial.number), steps[-1][1]))
                best = trial.value
                steps.append((x(trial.number), y(best)))
    if steps:
        steps.append((x(count - 1), steps[-1][1]))
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in steps)
        parts.append(f'<polyline class="best-so-far" {attrs(data_max=best)} '
                     f'points="{points}" fill="none" stroke="{COLORS["best"]}" '
                     f'stroke-width="1.5" stroke-opacity="0.6"><title>best search value so '
                     f'far (single runs, not confirmed)</title></polyline>')
    for trial in trials:
        cx = x(trial.number)
        role = role_of(trial)
        ids = attrs(data_trial=trial.number, data_role=role)
        if trial.state == "complete" and trial.value is not None and trial.duplicate_of is not None:
            label = (f"trial {trial.number} reused the measurement of trial "
                     f"{trial.duplicate_of} (same configuration): {_fmt(trial.value)}, "
                     "not a new measurement")
            parts.append(f'<circle class="trial reused" {ids} '
                         f'{attrs(data_value=trial.value, data_duplicate_of=trial.duplicate_of)}'
                         f' cx="{cx:.1f}" cy="{y(trial.value):.1f}" r="4.5" fill="white" '
                         f'stroke="{COLORS["reused"]}" stroke-dasharray="2 2">'
                         f'<title>{escape(label)}</title></circle>')
        elif trial.state == "complete" and trial.value is not None:
            runs = len(trial.samples)
            label = (f"trial {trial.number} ({role}): {_fmt(trial.value)} from {runs} single "
                     f"run{'s' if runs != 1 else ''}, not confirmed")
            cy, color = y(trial.value), COLORS.get(role, COLORS["complete"])
            data = f'class="trial complete single-run" {ids} ' + attrs(
                data_value=trial.value, data_runs=runs)
            if role in ("defaults", "vendor"):
                parts.append(f'<rect {data} x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" '
                             f'height="10" fill="{color}"><title>{escape(label)}</title></rect>')
            else:
                parts.append(f'<circle {data} cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" '
                             f'fill="{color}"><title>{escape(label)}</title></circle>')
        elif trial.state == "pruned":
            cy = y(trial.intervals[-1]) if trial.intervals else HEIGHT - BOTTOM
            label = f"trial {trial.number} ({role}, pruned) {trial.reason}"
            parts.append(f'<circle class="trial pruned" {ids} cx="{cx:.1f}" cy="{cy:.1f}" '
                         f'r="4.5" fill="none" stroke="{COLORS["pruned"]}" stroke-width="1.5">'
                         f'<title>{escape(label)}</title></circle>')
        elif trial.state == "fail":
            cy = HEIGHT - BOTTOM - 6
            label = f"trial {trial.number} ({role}, failed) {trial.reason}"
            parts.append(f'<path class="trial fail" {ids} '
                         f'd="M{cx - 4:.1f},{cy - 4:.1f} l8,8 m0,-8 l-8,8" '
                         f'stroke="{COLORS["fail"]}" stroke-width="2">'
                         f'<title>{escape(label)}</title></path>')
    return parts


def _confirmation(confirmed: Sequence[Confirmed], y: Any, panel_x: float) -> list[str]:
    if not confirmed:
        return [f'<text class="unconfirmed" x="{panel_x + PANEL_W / 2}" '
                f'y="{TOP + (HEIGHT - TOP - BOTTOM) / 2}" text-anchor="middle" '
                f'font-size="11">not confirmed yet</text>']
    parts: list[str] = []
    slot = PANEL_W / len(confirmed)
    for index, entry in enumerate(confirmed):
        cx = panel_x + (index + 0.5) * slot
        color = COLORS["best"] if entry.best else COLORS.get(entry.label, COLORS["confirmed"])
        speedup = entry.speedup
        title = (f"{entry.label}: {_fmt(entry.mean)} [{_fmt(entry.low)}, {_fmt(entry.high)}] "
                 f"over {entry.rounds} interleaved rounds")
        if speedup:
            title += (f"; {speedup['ratio']:.2f}x [{speedup['low']:.2f}, "
                      f"{speedup['high']:.2f}] over the defaults ({speedup.get('verdict')})")
        data = attrs(data_label=entry.label, data_trial=entry.trial, data_mean=entry.mean,
                     data_low=entry.low, data_high=entry.high, data_rounds=entry.rounds,
                     data_ratio=speedup.get("ratio"), data_ratio_low=speedup.get("low"),
                     data_ratio_high=speedup.get("high"), data_verdict=speedup.get("verdict"),
                     data_best="yes" if entry.best else "no")
        top, bottom, mid = y(entry.high), y(entry.low), y(entry.mean)
        short = entry.label.replace("trial ", "#")
        parts.append(
            f'<g class="confirmed" {data}><title>{escape(title)}</title>'
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top:.1f}" y2="{bottom:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<line x1="{cx - 6:.1f}" x2="{cx + 6:.1f}" y1="{top:.1f}" y2="{top:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<line x1="{cx - 6:.1f}" x2="{cx + 6:.1f}" y1="{bottom:.1f}" y2="{bottom:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<path d="M{cx:.1f},{mid - 5:.1f} l5,5 l-5,5 l-5,-5 z" fill="{color}"/>'
            f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="11">{escape(short)}</text></g>')
    return parts


def _answer(answer: Answer, at_y: float, at_x: float) -> str:
    """The one "best" label: the study's answer, its interval and what it rests on."""
    kind = "confirmed" if answer.confirmed else "unconfirmed: single runs"
    lines = [f"best {_fmt(answer.value)}"]
    if answer.low is not None and answer.high is not None:
        lines.append(f"[{_fmt(answer.low)}, {_fmt(answer.high)}]")
    lines += [kind, f"trial {answer.trial}" + (f" ({answer.role})"
                                                if answer.role in ROLES[1:] else "")]
    data = attrs(data_trial=answer.trial, data_value=answer.value, data_low=answer.low,
                 data_high=answer.high, data_confirmed="yes" if answer.confirmed else "no")
    bold = ' font-weight="bold"'
    texts = "".join(f'<text x="{at_x:.1f}" y="{at_y + 4 + 13 * i:.1f}" font-size="11" '
                    f'fill="{COLORS["best"]}"{bold if i == 0 else ""}>'
                    f'{escape(line)}</text>' for i, line in enumerate(lines))
    return f'<g class="answer" {data}><title>{escape(answer.label)}</title>{texts}</g>'
