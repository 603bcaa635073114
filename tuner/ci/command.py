"""``tuner ci FILE [--study NAME ...]``: the gate for one study or several (every study of the
file when none is named), each with its own verdict; one report for all of them (a JUnit test
case per study) and one exit status: 2 if any study could not be checked (bad input, nothing
to compare with; the others are still checked and reported), else 1 if any fails the job
(regressed, or with ``--fail-on`` more), else 3 if any is inconclusive, else 0.

``--previous`` is a best.json (one study) or a folder holding ``NAME/best.json`` for each
(the layout ``--output`` and ``tuner tune`` write)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tuner.ci.run import CiOptions, CiRun, CiTarget
from tuner.ci.verdict import ERROR_EXIT
from tuner.errors import SpecError, SpecIssue, TunerError
from tuner.execution.runtimes import fingerprint_of
from tuner.goal import Goal
from tuner.host import probe_host
from tuner.results import ci_reports
from tuner.settings import Settings
from tuner.space import fit_to
from tuner.space.search_space import build_space
from tuner.space.workload import unit_of
from tuner.spec import load_file
from tuner.spec.models import StudySpec
from tuner.study.progress import Progress


def previous_for(given: str | None, name: str) -> Path | None:
    """``--previous`` for study ``name``: the file, or ``DIR/NAME/best.json``."""
    if given is None:
        return None
    path = Path(given)
    return path / name / "best.json" if path.is_dir() else path


def exit_status(records: list[dict[str, Any]]) -> int:
    codes = {int(r.get("exit_code", ERROR_EXIT)) for r in records}
    for code in (ERROR_EXIT, 1, 3):
        if code in codes:
            return code
    return 0


def check_one(spec: StudySpec, args: argparse.Namespace, settings: Settings,
              context: tuple[Any, str]) -> dict[str, Any]:
    """The record of one study's ci run, or an error record naming why it could not run."""
    host, text = context
    try:
        space = build_space(spec, host)
        target = CiTarget(space=space, storage_url=args.storage or spec.storage
                          or settings.default_storage,
                          fingerprint=fingerprint_of(host, spec.workload.python,
                                                     settings=settings),
                          spec_text=text,
                          previous_file=previous_for(args.previous, spec.name))
        progress = Progress(planned=None, time_budget=None, unit=unit_of(spec.workload),
                            goal=Goal.of(spec.objective.direction), quiet=args.quiet)
        options = CiOptions(retune=args.retune, fail_on=args.fail_on,
                            output_dir=Path(args.output or settings.output_dir))
        try:
            return CiRun(target, settings=settings, options=options, events=progress).run()
        finally:
            progress.close()
    except (TunerError, ValueError) as exc:
        message = str(exc)
        print(f"tuner ci: {spec.name}: {message}", file=sys.stderr)
        return {"study": spec.name, "verdict": "error", "reason": message,
                "exit_code": ERROR_EXIT}


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        host = probe_host()
        loaded = load_file(args.file, fit=fit_to(host),
                           only=set(args.study) if args.study else None)
        wanted = args.study or [s.name for s in loaded.studies]
        unknown = [n for n in wanted if n not in {s.name for s in loaded.studies}]
        if unknown:
            have = ", ".join(s.name for s in loaded.studies)
            raise SpecError([SpecIssue(source=args.file, line=None, field="study", message=(
                f"no study named {', '.join(unknown)}; the file has {have}"))])
        if args.previous and not Path(args.previous).is_dir() and len(wanted) > 1:
            raise TunerError(f"--previous {args.previous}: a file, but {len(wanted)} studies "
                             "are checked; give a folder holding NAME/best.json for each")
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return ERROR_EXIT
    except TunerError as exc:
        print(f"tuner ci: {exc}", file=sys.stderr)
        return ERROR_EXIT
    specs = [s for s in loaded.studies if s.name in wanted]
    records = [check_one(spec, args, settings, (host, loaded.text)) for spec in specs]
    for record in records:
        if record.get("verdict") != "error":
            print(ci_reports.text(record))
    return write_reports(records, args, settings) or exit_status(records)


def write_reports(records: list[dict[str, Any]], args: argparse.Namespace,
                  settings: Settings) -> int:
    """Write the reports asked for; ERROR_EXIT (said in one line) when one cannot be."""
    markdown = ci_reports.markdown(records)
    try:
        for path, content in ((args.junit, ci_reports.junit(records)),
                              (args.markdown, markdown),
                              (args.benchmark_json, ci_reports.benchmark_json(records))):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(content)
        if settings.github_step_summary is not None:
            with settings.github_step_summary.open("a") as summary:
                summary.write(markdown + "\n")
    except OSError as exc:  # the verdicts stand (they are in the history); the report is lost
        print(f"tuner ci: cannot write a report: {exc.filename}: {exc.strerror}",
              file=sys.stderr)
        return ERROR_EXIT
    return 0
