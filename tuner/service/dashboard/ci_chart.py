"""A study's ci history on the dashboard: each ``tuner ci`` record read defensively into a
``CiRow`` (what the table shows), and the chart of the runs as inline SVG (no script).

The chart shows, per ci run in order, the deployed settings' speedup over the framework
defaults measured in that run (``speedup_now``): the ratio as a point coloured by the run's
verdict, its interval as a whisker from low to high, a dashed line at 1.0x (no speedup),
and under each run its date and a short label of what changed. A run without a usable
speedup is a cross on the axis. Every point carries ``data-run``, ``data-ratio``,
``data-low``, ``data-high`` and ``data-verdict`` and a ``<title>`` tooltip.

Records come from the database as stored (``tuner.service.api.views.ci_history``): a key
that is missing or of the wrong type counts as absent, never as an error, and every text
placed in the markup is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from tuner.service.dashboard.chart import Axis, attrs

VERDICTS = ("ok", "improved", "regressed", "inconclusive")
COLORS = {"ok": "#1a9850", "improved": "#1f6fb2", "regressed": "#d7301f",
          "inconclusive": "#e08214", "unknown": "#777777"}
WIDTH, HEIGHT = 1000, 330
LEFT, RIGHT, TOP, BOTTOM = 66, 24, 34, 64
MAX_RUNS, LABEL_CHARS = 40, 28  # the chart shows the latest runs; the table lists them all


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ratio(value: Any) -> float | None:
    """A speedup: a positive number (absurd ones, which no measurement gives, are absent)."""
    number = _number(value)
    return number if number is not None and 0 < number < 1e6 else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _when(value: Any, form: str = "%Y-%m-%d %H:%M UTC") -> str:
    at = _number(value)
    if at is None:
        return ""
    try:
        return datetime.fromtimestamp(at, tz=UTC).strftime(form)
    except (OverflowError, OSError, ValueError):
        return ""


def _change(item: Any) -> str | None:
    """``TensorFlow 2.14.0→2.21.0`` for one entry of ``changed``."""
    if not isinstance(item, dict):
        return None
    label = _text(item.get("label")) or _text(item.get("field"))
    then, now = item.get("then"), item.get("now")
    if then is None and now is None:
        return label or None
    shown = "→".join("?" if v is None else str(v) for v in (then, now))
    return f"{label} {shown}".strip()


@dataclass(frozen=True, kw_only=True)
class CiRow:
    """One ci run as the dashboard shows it; ``None`` or ``""`` where the record had no
    usable value."""

    run: int
    at: str
    date: str
    host_class: str
    changes: tuple[str, ...] | None  # None: the record says nothing of what changed
    ratio: float | None
    low: float | None
    high: float | None
    rounds: int | None
    verdict: str
    reason: str
    retuned: str

    @property
    def kind(self) -> str:
        """The verdict when it is one of ``VERDICTS``, else ``unknown`` (for colours)."""
        return self.verdict if self.verdict in VERDICTS else "unknown"

    @property
    def changed(self) -> str:
        return "" if self.changes is None else ", ".join(self.changes) or "no change"

    @property
    def short_change(self) -> str:
        if not self.changes:
            return self.changed
        more = len(self.changes) - 1
        return self.changes[0] + (f" +{more}" if more else "")

    @property
    def speedup(self) -> str:
        """``1.12x [1.05, 1.19]``: the deployed settings over the framework defaults."""
        if self.ratio is None:
            return "not measured"
        shown = f"{self.ratio:.2f}x"
        if self.low is None or self.high is None:
            return shown
        return f"{shown} [{self.low:.2f}, {self.high:.2f}]"


def row(record: dict[str, Any], position: int) -> CiRow:
    """``record`` read defensively; ``position`` (1-based) stands in for a missing run."""
    run, changed = _integer(record.get("run")), record.get("changed")
    changes = (tuple(c for c in map(_change, changed) if c)
               if isinstance(changed, list) else None)
    now = record.get("speedup_now")
    now = now if isinstance(now, dict) else {}
    ratio, low, high = (_ratio(now.get(k)) for k in ("ratio", "low", "high"))
    if ratio is None or low is None or high is None or not low <= ratio <= high:
        low = high = None  # an interval that does not hold its ratio is not drawn
    return CiRow(
        run=position if run is None else run,
        at=_when(record.get("at")), date=_when(record.get("at"), "%Y-%m-%d"),
        host_class=_text(record.get("host_class")), changes=changes,
        ratio=ratio, low=low, high=high,
        rounds=_integer(now.get("rounds")),
        verdict=_text(record.get("verdict")), reason=_text(record.get("reason")),
        retuned=_text(record.get("retuned")))


def rows(history: Iterable[Any]) -> list[CiRow]:
    """The table's rows, in the order stored (oldest first); non-objects left out."""
    records = [r for r in history if isinstance(r, dict)]
    return [row(r, i) for i, r in enumerate(records, start=1)]


def queued(pending: Any) -> str:
    """One line on a ci run queued through the API ("" when none)."""
    if not isinstance(pending, dict):
        return ""
    terms = [f"{name} {_text(pending.get(key))}" for name, key in
             (("fail on", "fail_on"), ("re-tune", "retune")) if _text(pending.get(key))]
    since = _when(pending.get("submitted_at"))
    return ("A ci run is queued for a worker" + (f" ({', '.join(terms)})" if terms else "")
            + (f", since {since}" if since else "") + ".")


def _title(r: CiRow) -> str:
    parts = [f"run {r.run}" + (f", {r.at}" if r.at else "")
             + (f", host class {r.host_class}" if r.host_class else ""),
             f"deployed settings over the framework defaults: {r.speedup}"
             + (f" ({r.rounds} rounds)" if r.rounds is not None else "")]
    parts += [f"changed: {r.changed}"] if r.changed else []
    parts.append((r.verdict or "no verdict") + (f": {r.reason}" if r.reason else ""))
    return "; ".join(parts)


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def render(all_rows: Sequence[CiRow]) -> str:
    """The SVG chart of ``all_rows`` (the latest ``MAX_RUNS``); "" when there is none."""
    shown = list(all_rows)[-MAX_RUNS:]
    if not shown:
        return ""
    values = [1.0] + [v for r in shown for v in (r.ratio, r.low, r.high) if v is not None]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or 0.05
    axis = Axis(low - pad, high + pad)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = len(shown)

    def x(index: int) -> float:
        return LEFT + (index + 0.5) / count * plot_w

    def y(value: float) -> float:
        return TOP + (axis.high - value) / (axis.high - axis.low) * plot_h

    parts = [f'<svg id="ci-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="the deployed settings\' speedup over the framework defaults in '
             f'each ci run, with its interval">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fbfbfb" '
             f'stroke="#ccc"/>']
    heading = "deployed settings over the framework defaults, per ci run"
    if len(all_rows) > count:
        heading += f" (the latest {count} of {len(all_rows)})"
    parts.append(f'<text x="{LEFT}" y="{TOP - 12}" font-size="12">{escape(heading)}</text>')
    legend_x = WIDTH - RIGHT - 78 * len(VERDICTS)
    for i, verdict in enumerate(VERDICTS):
        lx = legend_x + 78 * i
        parts.append(f'<circle cx="{lx + 5}" cy="{TOP - 16}" r="4.5" '
                     f'fill="{COLORS[verdict]}"/><text x="{lx + 13}" y="{TOP - 12}" '
                     f'font-size="11">{verdict}</text>')
    for tick in axis.ticks():
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#eee"/><text x="{LEFT - 6}" '
                     f'y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{escape(f"{tick:.2f}x")}</text>')
    parts.append(f'<line class="no-speedup" data-ratio="1" x1="{LEFT}" x2="{LEFT + plot_w}" '
                 f'y1="{y(1.0):.1f}" y2="{y(1.0):.1f}" stroke="#555" stroke-dasharray="6 4">'
                 f'<title>1.0x: as fast as the framework defaults</title></line>'
                 f'<text x="14" y="{TOP + plot_h / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {TOP + plot_h / 2})">speedup over defaults</text>')
    trend = " ".join(f"{x(i):.1f},{y(r.ratio):.1f}" for i, r in enumerate(shown)
                     if r.ratio is not None)
    if trend.count(",") > 1:
        parts.append(f'<polyline points="{trend}" fill="none" stroke="#bbb" '
                     f'stroke-width="1"/>')
    step = max(1, math.ceil(count / 10))
    for i, r in enumerate(shown):
        parts.append(_point(r, x(i), y))
        if (count - 1 - i) % step == 0:
            first = f"#{r.run}" + (f" · {r.date}" if r.date else "")
            parts.append(f'<text class="ci-label" x="{x(i):.1f}" y="{TOP + plot_h + 16}" '
                         f'text-anchor="middle" font-size="11">{escape(first)}</text>'
                         f'<text class="ci-label" x="{x(i):.1f}" y="{TOP + plot_h + 30}" '
                         f'text-anchor="middle" font-size="10" fill="#555">'
                         f'{escape(_short(r.short_change))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _point(r: CiRow, cx: float, y: Any) -> str:
    color = COLORS[r.kind]
    data = attrs(data_run=r.run, data_ratio=r.ratio, data_low=r.low, data_high=r.high,
                 data_verdict=r.verdict)
    title = f"<title>{escape(_title(r))}</title>"
    if r.ratio is None:
        cy = HEIGHT - BOTTOM - 8
        return (f'<g class="ci-run unmeasured {r.kind}" {data}>{title}'
                f'<path d="M{cx - 4:.1f},{cy - 4:.1f} l8,8 m0,-8 l-8,8" stroke="{color}" '
                f'stroke-width="2"/></g>')
    whisker = ""
    if r.low is not None and r.high is not None:
        top, bottom = y(r.high), y(r.low)
        whisker = (f'<line class="ci-interval" x1="{cx:.1f}" x2="{cx:.1f}" y1="{top:.1f}" '
                   f'y2="{bottom:.1f}" stroke="{color}" stroke-width="2"/>'
                   + "".join(f'<line x1="{cx - 5:.1f}" x2="{cx + 5:.1f}" y1="{v:.1f}" '
                             f'y2="{v:.1f}" stroke="{color}" stroke-width="2"/>'
                             for v in (top, bottom)))
    return (f'<g class="ci-run ci-point {r.kind}" {data}>{title}{whisker}'
            f'<circle cx="{cx:.1f}" cy="{y(r.ratio):.1f}" r="5" fill="{color}"/></g>')
