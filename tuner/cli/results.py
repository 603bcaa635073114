"""Subcommands that read a study database: ``best``, ``export``, ``list``, ``delete``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuner.cli.common import add_study_arguments, storage_for


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
    """Every run of a study as CSV or JSON rows (``tuner.results.export``)."""
    from tuner.results.export import export
    from tuner.store import database as store

    study = store.load(storage_for(args), args.name, heartbeat=False)
    text = export(study, args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    from tuner.results.summary import MALFORMED, summarize, why_unreadable
    from tuner.store import database as store

    url = storage_for(args)
    storage = store.open_storage(url, heartbeat=False)
    names = sorted(optuna.get_all_study_names(storage))
    if not names:
        print(f"no studies in {store.redact(url)}")
    for name in names:
        try:
            summary = summarize(optuna.load_study(study_name=name, storage=storage))
        except MALFORMED as exc:
            print(f"{name}: {why_unreadable(exc)}")
            continue
        answer = summary.answer
        best = (f"best {summary.metric} {answer.label}: {answer.knobs_text}" if answer
                else "no trial completed yet")
        print(f"{name}: {summary.counted}/{summary.planned or '?'} trials, {best}")
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

    p = sub.add_parser("export", help="every run of a study as CSV or JSON rows: the knobs "
                                      "applied, the value, state, reason, environment")
    add_study_arguments(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("list", help="studies in a database")
    p.add_argument("--storage")
    p.set_defaults(func=cmd_list, file=None, name=None)
