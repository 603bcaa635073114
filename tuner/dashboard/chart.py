"""The study chart, as inline SVG (no script, no CDN): every trial's value in order, the
best-so-far line, the two baselines drawn across, pruned trials at the last value they
reported, failed trials as crosses on the axis. Elements carry ``data-*`` attributes with
the numbers they show, so tests (and scripts) can read the chart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from tuner.api.schemas import Trial

WIDTH, HEIGHT = 860, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 120, 20, 40
COLORS = {"complete": "#1f6fb2", "best": "#1a9850", "defaults": "#e08214",
          "vendor": "#7b3294", "pruned": "#999999", "fail": "#d7301f"}


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


def render(trials: list[Trial], *, maximize: bool, unit: str,
           baselines: dict[str, float | None]) -> str:
    values = [t.value for t in trials if t.state == "complete" and t.value is not None]
    values += [t.intervals[-1] for t in trials if t.state == "pruned" and t.intervals]
    values += [v for v in baselines.values() if v is not None]
    if not trials or not values:
        return ('<svg id="trials-chart" role="img" aria-label="no trial yet" width="860" '
                'height="60"><text x="10" y="35">No trial has finished yet.</text></svg>')
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    axis = Axis(low - pad, high + pad)
    count = max(t.number for t in trials) + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(number: float) -> float:
        return LEFT + (number + 0.5) / count * plot_w

    def y(value: float) -> float:
        return TOP + (axis.high - value) / (axis.high - axis.low) * plot_h

    parts = [f'<svg id="trials-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="value of every trial in order, best so far, and the baselines">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fbfbfb" '
             f'stroke="#ccc"/>']
    for tick in axis.ticks():
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{_fmt(tick)}</text>')
    step = max(1, math.ceil(count / 12))
    for number in range(0, count, step):
        parts.append(f'<text x="{x(number):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                     f'font-size="11">{number}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle" '
                 f'font-size="12">trial</text><text x="14" y="{TOP + plot_h / 2}" '
                 f'font-size="12" transform="rotate(-90 14 {TOP + plot_h / 2})" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    for role, value in baselines.items():
        if value is None:
            continue
        parts.append(f'<line class="baseline" data-role="{role}" data-value="{value}" '
                     f'x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="{COLORS[role]}" stroke-dasharray="6 4" stroke-width="1.5"/>'
                     f'<text x="{LEFT + plot_w + 6}" y="{y(value) + 4:.1f}" font-size="11" '
                     f'fill="{COLORS[role]}">{role} {_fmt(value)}</text>')
    best: float | None = None
    steps: list[tuple[float, float]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == "complete" and trial.value is not None:
            better = best is None or (trial.value > best if maximize else trial.value < best)
            if better:
                if steps:  # hold the previous best up to this trial, then step
                    steps.append((x(trial.number), steps[-1][1]))
                best = trial.value
                steps.append((x(trial.number), y(best)))
    if steps:
        steps.append((x(count - 1), steps[-1][1]))
    if steps:
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in steps)
        parts.append(f'<polyline class="best-so-far" data-best="{best}" points="{points}" '
                     f'fill="none" stroke="{COLORS["best"]}" stroke-width="2"/>'
                     f'<text x="{LEFT + plot_w + 6}" y="{steps[-1][1] - 6:.1f}" font-size="11" '
                     f'fill="{COLORS["best"]}">best {_fmt(best or 0)}</text>')
    for trial in trials:
        cx = x(trial.number)
        label = escape(f"trial {trial.number} ({trial.role}, {trial.state}) "
                       + (_fmt(trial.value) if trial.value is not None else trial.reason))
        if trial.state == "complete" and trial.value is not None:
            shape = "rect" if trial.role in ("defaults", "vendor") else "circle"
            cy = y(trial.value)
            color = COLORS.get(trial.role, COLORS["complete"])
            if shape == "rect":
                parts.append(f'<rect class="trial complete" data-trial="{trial.number}" '
                             f'data-value="{trial.value}" data-role="{trial.role}" '
                             f'x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" '
                             f'fill="{color}"><title>{label}</title></rect>')
            else:
                parts.append(f'<circle class="trial complete" data-trial="{trial.number}" '
                             f'data-value="{trial.value}" data-role="{trial.role}" '
                             f'cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="{color}">'
                             f'<title>{label}</title></circle>')
        elif trial.state == "pruned":
            cy = y(trial.intervals[-1]) if trial.intervals else TOP + plot_h
            parts.append(f'<circle class="trial pruned" data-trial="{trial.number}" '
                         f'cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="none" '
                         f'stroke="{COLORS["pruned"]}" stroke-width="1.5"><title>{label}'
                         f'</title></circle>')
        elif trial.state == "fail":
            cy = TOP + plot_h - 6
            parts.append(f'<path class="trial fail" data-trial="{trial.number}" '
                         f'd="M{cx - 4:.1f},{cy - 4:.1f} l8,8 m0,-8 l-8,8" '
                         f'stroke="{COLORS["fail"]}" stroke-width="2"><title>{label}</title>'
                         f'</path>')
    parts.append("</svg>")
    return "".join(parts)
