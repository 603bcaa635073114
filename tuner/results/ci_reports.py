"""A ci run's record (``tuner.ci``: the study attribute ``ci_runs``) as people and CI systems
read it: text for the terminal, Markdown for a job summary (``$GITHUB_STEP_SUMMARY``),
JUnit XML (one test case per study: a failure when the run fails the job, skipped when it is
inconclusive) and github-action-benchmark's ``customBiggerIsBetter`` JSON (the deployed
settings' speedup over the framework defaults, and the new best's, each with its interval
as the range)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from xml.etree import ElementTree

VERDICT_WORDS = {
    "ok": "ok: the deployed settings are still the best within the threshold",
    "improved": "improved: a new configuration is measurably better (new settings written)",
    "regressed": "regressed: the deployed settings lost by more than the threshold",
    "inconclusive": "inconclusive: the rounds ran out before the comparisons were decided",
}


def interval_text(speedup: Mapping[str, Any] | None) -> str:
    if not speedup or speedup.get("ratio") is None:
        return "not measured"
    try:
        return (f"{float(speedup['ratio']):.2f}x [{float(speedup['low']):.2f}, "
                f"{float(speedup['high']):.2f}]")
    except (KeyError, TypeError, ValueError):
        return "not measured"


def _knobs(knobs: Mapping[str, Any] | None) -> str:
    return (", ".join(f"{k}={v}" for k, v in sorted((knobs or {}).items()))
            or "no knob set (the framework defaults)")


def text(record: Mapping[str, Any]) -> str:
    lines = [f"tuner ci {record.get('study')} (run {record.get('run')}): "
             f"{VERDICT_WORDS.get(str(record.get('verdict')), record.get('verdict'))}",
             f"  {record.get('reason')}"]
    changed = record.get("changed") or []
    lines.append("  what changed: " + ("; ".join(
        f"{c.get('label')} {c.get('then') or 'none'} -> {c.get('now') or 'none'}"
        for c in changed)
        if changed else "nothing in the environment"))
    deployed = record.get("deployed") or {}
    lines.append(f"  deployed: {_knobs(deployed.get('knobs'))} ({deployed.get('source')})")
    lines.append(f"  deployed over the framework defaults: then "
                 f"{interval_text(record.get('speedup_then'))}, now "
                 f"{interval_text(record.get('speedup_now'))}"
                 + (f"; now/then {interval_text(record.get('edge'))}"
                    if record.get("edge") else ""))
    for item in record.get("comparisons") or []:
        lines.append(f"  deployed over {item.get('rival')}: {interval_text(item)} "
                     f"({item.get('standing')})")
    if record.get("retuned"):
        lines.append(f"  re-tuned in study {record['retuned']}: {record.get('retune_reason')}")
    new = record.get("new_best")
    if new:
        lines.append(f"  new settings: {new.get('label')}: {_knobs(new.get('knobs'))}; "
                     f"{interval_text(new)} of the deployed, "
                     f"{interval_text(new.get('over_defaults'))} of the defaults")
    if record.get("written"):
        lines.append(f"  written to {record['written']}/best.env, best.json and best.sh")
    lines.append(f"  {record.get('rounds')} interleaved rounds, threshold "
                 f"{float(record.get('threshold') or 0):.0%}; exit status "
                 f"{record.get('exit_code')} (--fail-on {record.get('fail_on')})")
    return "\n".join(lines)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(records: Iterable[Mapping[str, Any]]) -> str:
    out = ["## tuner ci", ""]
    for record in records:
        verdict = str(record.get("verdict"))
        if verdict == "error":
            out += [f"### {_cell(record.get('study'))}: **error**", "",
                    "Not checked: " + _cell(record.get("reason")), ""]
            continue
        out += [f"### {_cell(record.get('study'))}: **{verdict}**", "",
                _cell(VERDICT_WORDS.get(verdict, verdict)) + ". " + _cell(record.get("reason")),
                ""]
        changed = record.get("changed") or []
        if changed:
            out += ["| what changed | then | now |", "|---|---|---|"]
            out += [f"| {_cell(c.get('label'))} | {_cell(c.get('then'))} | "
                    f"{_cell(c.get('now'))} |" for c in changed]
        else:
            out.append("Nothing in the environment changed since the previous result.")
        out += ["", "| deployed settings over | speedup [interval] | standing |",
                "|---|---|---|"]
        out += [f"| {_cell(c.get('rival'))} | {interval_text(c)} | {_cell(c.get('standing'))} |"
                for c in record.get("comparisons") or []]
        out += ["", f"Deployed settings over the framework defaults: then "
                f"{interval_text(record.get('speedup_then'))}, now "
                f"{interval_text(record.get('speedup_now'))}.", ""]
        new = record.get("new_best")
        if new:
            out += [f"New settings ({_cell(new.get('label'))}): `{_cell(_knobs(new.get('knobs')))}`"
                    f", {interval_text(new)} of the deployed settings"
                    + (f", written to `{_cell(record.get('written'))}`"
                       if record.get("written") else "") + ".", ""]
        out += [f"{record.get('rounds')} interleaved rounds; threshold "
                f"{float(record.get('threshold') or 0):.0%}; exit status "
                f"{record.get('exit_code')}.", ""]
    return "\n".join(out)


def junit(records: Iterable[Mapping[str, Any]]) -> str:
    """JUnit XML: a test suite ``tuner ci``, one test case per study."""
    items = list(records)
    failures = sum(1 for r in items if r.get("exit_code") == 1)
    errors = sum(1 for r in items if r.get("verdict") == "error")
    skipped = sum(1 for r in items if r.get("exit_code") == 3)
    seconds = sum(float(r.get("seconds") or 0.0) for r in items)
    suites = ElementTree.Element("testsuites", name="tuner ci", tests=str(len(items)),
                                 failures=str(failures), errors=str(errors),
                                 time=f"{seconds:.3f}")
    suite = ElementTree.SubElement(suites, "testsuite", name="tuner ci", tests=str(len(items)),
                                   failures=str(failures), errors=str(errors),
                                   skipped=str(skipped),
                                   time=f"{seconds:.3f}")
    for record in items:
        case = ElementTree.SubElement(suite, "testcase", classname="tuner.ci",
                                      name=str(record.get("study")),
                                      time=f"{float(record.get('seconds') or 0.0):.3f}")
        verdict = str(record.get("verdict"))
        message = f"{verdict}: {record.get('reason')}"
        if verdict == "error":
            ElementTree.SubElement(case, "error", message=str(record.get("reason")),
                                   type="error")
            continue
        if record.get("exit_code") == 1:
            ElementTree.SubElement(case, "failure", message=message,
                                   type=verdict).text = text(record)
        elif record.get("exit_code") == 3:
            ElementTree.SubElement(case, "skipped", message=message)
        ElementTree.SubElement(case, "system-out").text = text(record)
    ElementTree.indent(suites)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ElementTree.tostring(suites, encoding="unicode") + "\n")


def benchmark_json(records: Iterable[Mapping[str, Any]]) -> str:
    """github-action-benchmark's ``customBiggerIsBetter`` entries: name, unit, value, range,
    extra."""
    entries = []
    for record in records:
        study = record.get("study")
        for name, speedup in ((f"{study}: deployed settings over the framework defaults",
                               record.get("speedup_now")),
                              (f"{study}: new settings over the framework defaults",
                               (record.get("new_best") or {}).get("over_defaults"))):
            if not speedup or speedup.get("ratio") is None:
                continue
            ratio = float(speedup["ratio"])
            half = max(float(speedup["high"]) - ratio, ratio - float(speedup["low"]))
            entries.append({"name": name, "unit": "x", "value": round(ratio, 4),
                            "range": f"± {half:.4f}",
                            "extra": f"interval {interval_text(speedup)}; verdict "
                                     f"{record.get('verdict')}; host class "
                                     f"{record.get('host_class')}"})
    return json.dumps(entries, indent=2) + "\n"
