"""Subcommands that read a study database: ``best``, ``export``, ``list``, ``delete``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tuner.cli.common import add_study_arguments, storage_for
from tuner.errors import TunerError


def cmd_best(args: argparse.Namespace) -> int:
    from tuner.results.render import best_as, render
    from tuner.results.summary import importance, summarize
    from tuner.store import database as store

    study = store.load(storage_for(args), args.name, heartbeat=False)
    summary = summarize(study)
    if args.format == "text":
        print(render(summary, importances=importance(study)))
        return 0 if summary.best else 1
    if summary.best is None:
        print(f"study {args.name} has no completed trial yet", file=sys.stderr)
        return 1
    print(best_as(summary, args.format))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Every run of a study as CSV, JSON or Parquet rows (``tuner.results.export``)."""
    from tuner.results.export import ExportUnavailable, export_bytes
    from tuner.store import database as store

    if args.format == "parquet" and not args.output and sys.stdout.isatty():
        raise TunerError("Parquet is a binary file: give -o FILE (or redirect the output)")
    study = store.load(storage_for(args), args.name, heartbeat=False)
    try:
        data = export_bytes(study, args.format)
    except ExportUnavailable as exc:
        raise TunerError(str(exc)) from exc
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data if data.endswith(b"\n") or args.format == "parquet"
                                else data + b"\n")
        sys.stdout.buffer.flush()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    from tuner.results.summary import MALFORMED, summarize, why_unreadable
    from tuner.store import database as store

    url = storage_for(args)
    storage = store.open_storage(url, heartbeat=False)
    rows: list[dict[str, Any]] = []
    for name in sorted(optuna.get_all_study_names(storage)):
        try:
            summary = summarize(optuna.load_study(study_name=name, storage=storage))
        except MALFORMED as exc:
            rows.append({"name": name, "error": why_unreadable(exc)})
            continue
        answer = summary.answer
        rows.append({
            "name": name, "workload": summary.workload, "metric": summary.metric,
            "unit": summary.unit, "direction": summary.goal.direction,
            "trials": summary.counted, "planned": summary.planned,
            "states": summary.states, "confirmed": summary.confirmed,
            "best": None if answer is None else {
                "trial": answer.trial, "role": answer.role, "value": answer.value,
                "low": answer.low, "high": answer.high, "knobs": answer.knobs,
                "label": answer.label, "knobs_text": answer.knobs_text}})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no studies in {store.redact(url)}")
    for row in rows:
        if "error" in row:
            print(f"{row['name']}: {row['error']}")
            continue
        best = row["best"]
        text = (f"best {row['metric']} {best['label']}: {best['knobs_text']}" if best
                else "no trial completed yet")
        print(f"{row['name']}: {row['trials']}/{row['planned'] or '?'} trials, {text}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    import optuna

    from tuner.store import database as store

    url = storage_for(args)
    store.load(url, args.name, heartbeat=False)  # NotFoundError if absent
    optuna.delete_study(study_name=args.name, storage=store.open_storage(url, heartbeat=False))
    print(f"deleted study {args.name} from {store.redact(url)}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``best``, ``delete``, ``export`` and ``list``."""
    for name, func, text in (("best", cmd_best, "the best settings of a study"),
                             ("delete", cmd_delete, "delete a study and its trials")):
        p = sub.add_parser(name, help=text)
        add_study_arguments(p)
        if name == "best":
            p.add_argument("--format", choices=("text", "env", "json", "shell"),
                           default="text")
        p.set_defaults(func=func)

    p = sub.add_parser("export", help="every run of a study as CSV, JSON or Parquet rows: "
                                      "the knobs applied, the value, state, reason, "
                                      "environment")
    add_study_arguments(p)
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv",
                   help="parquet needs pip install 'tuner[parquet]'")
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("list", help="studies in a database")
    p.add_argument("--storage")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per study: trials, states, the best and its interval")
    p.set_defaults(func=cmd_list, file=None, name=None)
