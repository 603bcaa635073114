"""A comparison of two studies (``tuner.results.comparison``) for people: the two bests in a
table, their knob differences, and the paired confirmation of the two (the one that just
ran, or the newest stored), every ratio stated as b over a with the goal in words."""

from __future__ import annotations

import time
from typing import Any

from tuner.results.comparison import Comparison, KnobRow, Side


def goal_words(comparison: Comparison) -> str:
    """``throughput in items/s, higher is better``."""
    a = comparison.a
    unit = f" in {a.unit}" if a.unit else ""
    return f"{a.metric}{unit}, {'higher' if a.goal.maximize else 'lower'} is better"


def ratio_meaning(comparison: Comparison) -> str:
    """What the ratio divides, for the goal at hand (> 1 always favours b)."""
    a, b = comparison.a.name, comparison.b.name
    if comparison.a.goal.maximize:
        return f"{b}'s {comparison.a.metric} over {a}'s: above 1 means {b}'s best is better"
    return (f"{a}'s {comparison.a.metric} over {b}'s (lower is better): above 1 means {b}'s "
            "best is better")


def _value(side: Side) -> str:
    return side.answer.value_text


def _basis(side: Side) -> str:
    answer = side.answer
    if answer.confirmed:
        return f"confirmed over {answer.runs} interleaved rounds"
    return f"unconfirmed: the search value of {answer.runs} run{'s' if answer.runs != 1 else ''}"


def _table(rows: list[tuple[str, str, str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [f"{indent}{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in rows]


def bests_table(comparison: Comparison) -> list[str]:
    a, b = comparison.a, comparison.b
    same_workload = "the same" if comparison.same_workload else b.workload_label
    return _table([
        ("", f"a: {a.name}", f"b: {b.name}"),
        ("best", _value(a), _value(b)),
        ("basis", _basis(a), _basis(b)),
        ("trial", _trial(a), _trial(b)),
        ("host class", a.host_class or "unknown", b.host_class or "unknown"),
        ("cpu", a.cpu_model or "?", b.cpu_model or "?"),
        ("workload", a.workload_label, same_workload),
    ])


def _trial(side: Side) -> str:
    answer = side.answer
    return f"{answer.trial}" + (f" ({answer.role})" if answer.role != "search" else "")


def _knob_value(row: KnobRow, side: str) -> str:
    present = row.in_a if side == "a" else row.in_b
    return str(row.a if side == "a" else row.b) if present else "-"


def knob_lines(comparison: Comparison) -> list[str]:
    rows = comparison.knobs
    if not rows:
        return ["Knobs: neither best sets any (both are the framework defaults)"]
    differ = len(comparison.differences)
    head = (f"Knobs of the two bests: {differ} differ" if differ else
            "Knobs of the two bests: the same settings")
    table = [("knob", "a", "b", "")] + [
        (r.knob, _knob_value(r, "a"), _knob_value(r, "b"),
         r.status + (f": {r.note}" if r.note else "")) for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(3)]
    return [head] + [f"  {t[0]:<{widths[0]}}  {t[1]:<{widths[1]}}  {t[2]:<{widths[2]}}  "
                     f"{t[3]}".rstrip() for t in table]


def where_lines(comparison: Comparison) -> list[str]:
    out = []
    if comparison.same_workload:
        out.append("Workload: the same in both studies")
    else:
        out.append("Workloads differ: " + "; ".join(comparison.workload_differences))
    a, b, here = comparison.a, comparison.b, comparison.here
    if comparison.same_host_class:
        line = f"Host class: both measured on {a.host_class}"
        if here is not None and not here.problem:
            mine = here.a if here.a == here.b else f"{here.a} (a), {here.b} (b)"
            line += ("; this machine is of that class" if here.a == a.host_class
                     and here.b == b.host_class else f"; this machine is {mine}")
        out.append(line)
    else:
        out.append(f"Host classes differ: a on {a.host_class or 'unknown'}, b on "
                   f"{b.host_class or 'unknown'}")
    if comparison.incomparable:
        out.append(f"Not comparable: {comparison.incomparable}; only the knobs are compared")
    return out


def statement(record: dict[str, Any], comparison: Comparison) -> str:
    """One line for a paired confirmation, as b over a."""
    a, b = comparison.a.name, comparison.b.name
    rounds = record.get("rounds")
    ratio, low, high = record.get("ratio"), record.get("low"), record.get("high")
    if not isinstance(ratio, int | float) or not isinstance(low, int | float) \
            or not isinstance(high, int | float):
        return (f"no ratio: fewer than 2 rounds where both runs succeeded in {rounds} rounds"
                + (f" ({record['failures']})" if record.get("failures") else ""))
    return (f"{b} over {a}: {ratio:.3f}x [{low:.3f}, {high:.3f}] (95% interval, {rounds} "
            f"paired interleaved rounds) — {verdict_words(record, comparison)}")


def verdict_words(record: dict[str, Any], comparison: Comparison) -> str:
    """A stored verdict (b over a) in words: ``beta's best is measurably better``."""
    target = record.get("precision", {}).get("target") if isinstance(
        record.get("precision"), dict) else None
    within = f"+/-{target:.1%}" if isinstance(target, int | float) else "the target"
    verdict = str(record.get("verdict"))
    return {"win": f"{comparison.b.name}'s best is measurably better",
            "loss": f"{comparison.a.name}'s best is measurably better",
            "no measurable difference": f"no measurable difference (within {within})",
            "inconclusive": f"inconclusive: the round budget ran out before the interval "
                            f"narrowed to {within}",
            "failed": "no ratio: the runs failed"}.get(verdict, verdict)


def _when(record: dict[str, Any]) -> str:
    """``2026-12-03 16:29, host vm, host class 2c1n-4383e9d1e960``."""
    at = record.get("at")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if isinstance(
        at, int | float) else "?"
    return f"{when}, host {record.get('host', '?')}, host class {record.get('measured_on', '?')}"


def confirmation_lines(comparison: Comparison, *, ran: dict[str, Any] | None,
                       why_not: str | None) -> list[str]:
    """The paired confirmation that just ran, else why none ran and the newest stored."""
    out = [f"Ratio: {ratio_meaning(comparison)}"]
    if ran is not None:
        forced = ran.get("forced") or []
        out.append("Paired confirmation (measured now): " + statement(ran, comparison))
        if forced:
            out.append("  forced past: " + "; ".join(forced))
        out.append(f"  stored in both studies ({_when(ran)})")
        return out
    out.append(f"No paired confirmation ran: {why_not}" if why_not else
               "No paired confirmation ran")
    latest = comparison.latest
    if latest is not None:
        out.append(f"Stored confirmation ({_when(latest)}): " + statement(latest, comparison))
    return out


def render(comparison: Comparison, *, ran: dict[str, Any] | None = None,
           why_not: str | None = None) -> str:
    """The whole text of ``tuner compare``."""
    lines = [f"Comparing {comparison.a.name} (a) and {comparison.b.name} (b): "
             f"{goal_words(comparison)}", ""]
    lines += bests_table(comparison) + [""] + knob_lines(comparison) + [""]
    lines += where_lines(comparison)
    lines += confirmation_lines(comparison, ran=ran, why_not=why_not)
    return "\n".join(lines)
