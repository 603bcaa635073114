"""Subcommands that read study files: ``validate``, ``tune`` and ``ci``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.errors import SpecError, SpecIssue

if TYPE_CHECKING:
    from tuner.host import Host


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when every file is valid, 2 when one is not, 1 when tuner itself failed on one;
    whatever the input, the answer is lines naming the file, never a traceback."""
    from tuner.host import generic_host, probe_host

    host = generic_host() if args.no_host else probe_host()
    codes = [_validate_one(path, host, generic=args.no_host) for path in args.files]
    return max(codes, default=0)


def _validate_one(path: str, host: Host, *, generic: bool) -> int:
    from tuner.space import fit_to
    from tuner.space.search_space import build_space
    from tuner.spec import load_file

    try:
        loaded = load_file(path, fit=fit_to(host))
        for study in loaded.studies:
            space = build_space(study, host)
            for note in space.notes:
                print(f"note: {note}", file=sys.stderr)
            extra = f": {len(space.dims)} knobs tuned over {space.size} configurations"
            if space.fixed:
                extra += f", fixed {space.fixed}"
            if generic:
                extra += " (on a generic machine; not checked against this one)"
            print(f"{path}: study {study.name} is valid{extra}")
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of tuner's: one line, not a traceback
        logging.getLogger(__name__).debug("validating %s", path, exc_info=True)
        print(f"{path}: tuner failed to validate this file ({type(exc).__name__}: "
              f"{str(exc)[:200]}); please report it (-v shows where)", file=sys.stderr)
        return 1
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from tuner.execution.runtimes import fingerprint_of
    from tuner.goal import Goal
    from tuner.host import probe_host
    from tuner.results.render import render, write_best
    from tuner.results.summary import importance, summarize
    from tuner.settings import get_settings
    from tuner.space import fit_to
    from tuner.space.search_space import build_space
    from tuner.space.workload import unit_of
    from tuner.spec import load_file
    from tuner.study.progress import Progress
    from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget

    settings = get_settings()
    host = probe_host()
    # every study is checked as written; only those about to run are fitted to this host
    loaded = load_file(args.file, fit=fit_to(host), only=set(args.study) if args.study else None)
    studies = loaded.studies
    if args.study:
        wanted = set(args.study)
        unknown = wanted - {s.name for s in studies}
        if unknown:
            have = ", ".join(s.name for s in studies)
            raise SpecError([SpecIssue(source=args.file, line=None, field="study", message=(
                f"no study named {', '.join(sorted(unknown))}; the file has {have}"))])
        studies = [s for s in studies if s.name in wanted]
    if host.tools.numactl is None:
        print("note: numactl is not installed; CPU binding uses taskset/sched_setaffinity and "
              "memory binding is unavailable", file=sys.stderr)
    for spec in studies:
        space = build_space(spec, host)
        fp = fingerprint_of(host, spec.workload.python, settings=settings)
        for note in space.notes:
            print(f"note: {note}", file=sys.stderr)
        storage = args.storage or spec.storage or settings.default_storage
        runtime = f" in runtime {fp.runtime}" if fp.runtime else ""
        print(f"Tuning {spec.name}: {len(space.dims)} knobs over {space.size} configurations "
              f"on {fp.cpu_model} ({fp.physical_cores} cores, {fp.numa_nodes} NUMA nodes)"
              f"{runtime}; storage {storage}", file=sys.stderr)
        progress = Progress(planned=spec.budget.n_trials, time_budget=spec.budget.timeout,
                            unit=unit_of(spec.workload),
                            goal=Goal.of(spec.objective.direction), quiet=args.quiet)
        run = StudyRun(
            StudyTarget(space=space, storage_url=storage, fingerprint=fp, spec_text=loaded.text),
            collaborators=Collaborators(settings=settings),
            limits=RunLimits(max_trials=args.trials, confirm=not args.no_confirm,
                             resume_stopped=True),
            events=progress)
        result = run.run()
        if result.recovered:
            print(f"recovered trials {result.recovered} left running by a dead tuner process",
                  file=sys.stderr)
        summary = summarize(result.study)
        written = write_best(summary, Path(args.output or settings.output_dir))
        print(render(summary, written=written, importances=importance(result.study)))
    return 0


def cmd_ci(args: argparse.Namespace) -> int:
    """The regression gate (``tuner.ci.command``): exit 0 (ok, improved), 1 (regressed; with
    ``--fail-on``, more), 3 (inconclusive), 2 (an error: bad input, nothing to compare with)."""
    from tuner.ci.command import run_command
    from tuner.settings import get_settings

    return run_command(args, get_settings())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``validate``, ``tune`` and ``ci``."""
    p = sub.add_parser("validate", help="check study files without running anything")
    p.add_argument("files", nargs="+")
    p.add_argument("--no-host", action="store_true",
                   help="check against a generous generic machine, not this one")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("tune", help="run (or resume) the studies of a file")
    p.add_argument("file")
    p.add_argument("--study", action="append", help="only this study (repeatable)")
    p.add_argument("--storage", help="database URL (default: the study's, else sqlite)")
    p.add_argument("--trials", type=int, help="run at most this many trials now")
    p.add_argument("--output", help="directory for best.{env,json,sh} (default tuner-out)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-confirm", action="store_true",
                   help="skip the confirmation of the top candidates after the search")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("ci", help="the regression gate after an upgrade: re-measure the "
                                  "deployed settings, re-tune when needed, give a verdict")
    p.add_argument("file", help="the study file")
    p.add_argument("--study", action="append",
                   help="a study to check (repeatable; default: every study of the file)")
    p.add_argument("--storage", help="database URL (default: the study's, else sqlite)")
    p.add_argument("--previous", metavar="BEST_JSON_OR_DIR",
                   help="the deployed settings as a committed best.json, or a folder "
                        "holding NAME/best.json per study (default: the latest "
                        "recommendation in the study database)")
    p.add_argument("--output", help="directory for the new best.{env,json,sh} "
                                    "(default tuner-out)")
    p.add_argument("--fail-on", choices=("regressed", "changed", "any"), default="regressed",
                   help="exit 1 on regressed (default); changed: also on improved; any: on "
                        "anything but ok")
    p.add_argument("--retune", choices=("auto", "always", "never"), default="auto",
                   help="re-tune when the environment changed or the deployed settings "
                        "lost (auto), always, or never")
    p.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    p.add_argument("--markdown", metavar="PATH", help="write a Markdown summary (also "
                   "appended to $GITHUB_STEP_SUMMARY when set)")
    p.add_argument("--benchmark-json", metavar="PATH", help="write github-action-benchmark's "
                   "customBiggerIsBetter JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_ci)
