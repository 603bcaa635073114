"""``tuner compare A B``: the best of two studies side by side, their knob differences, and,
when both were measured on this machine's host class and measure the same workload (or with
``--force``), a paired interleaved confirmation of the two bests with an interval
(``tuner.results.comparison``, ``tuner.study.comparison_race``). Exit status: 0 when the
comparison was made (whatever its outcome), 1 for an error of tuner's (a study missing or
without a completed trial), 2 for bad input."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _file_storage(path: str, name: str) -> str | None:
    from tuner.spec import load_file

    return next((s.storage for s in load_file(path).studies
                 if s.name == name and s.storage), None)


def storages(args: argparse.Namespace) -> tuple[str, str]:
    """Where a and b are stored: ``--storage`` (else the study file's, else the default)
    for a, and ``--storage-b`` (else the study file's, else a's) for b."""
    from tuner.settings import get_settings

    storage_a = args.storage or (_file_storage(args.file, args.a) if args.file else None)
    storage_a = storage_a or get_settings().default_storage
    storage_b = args.storage_b or (
        None if args.storage or not args.file else _file_storage(args.file, args.b))
    return storage_a, storage_b or storage_a


def bad_input(args: argparse.Namespace, storage_a: str, storage_b: str) -> str | None:
    """What is wrong with the command line (None: nothing)."""
    from pydantic import TypeAdapter, ValidationError

    from tuner.spec.models import Name

    for name in (args.a, args.b):
        try:
            TypeAdapter(Name).validate_python(name)
        except ValidationError:
            return (f"{name!r} is not a study name (up to 100 letters, digits, '.', '_', "
                    "'-'; a letter or digit first)")
    if args.a == args.b and storage_a == storage_b:
        return f"compare a study with another one: {args.a!r} was given twice"
    if args.rounds is not None and args.max_rounds is not None \
            and args.max_rounds < args.rounds:
        return (f"--max-rounds ({args.max_rounds}) must be at least --rounds "
                f"({args.rounds}), the rounds of the first look")
    return None


def cmd_compare(args: argparse.Namespace) -> int:
    from tuner.host import probe_host
    from tuner.results.comparison import compare
    from tuner.results.comparison_render import render
    from tuner.settings import get_settings
    from tuner.store import database as store
    from tuner.study.comparison_race import PairBench, PairOptions, Stored

    storage_a, storage_b = storages(args)
    problem = bad_input(args, storage_a, storage_b)
    if problem is not None:
        print(f"tuner compare: {problem}", file=sys.stderr)
        return 2
    a = Stored(study=store.load(storage_a, args.a, heartbeat=False), storage_url=storage_a)
    b = Stored(study=store.load(storage_b, args.b, heartbeat=False), storage_url=storage_b)
    bench = PairBench(probe_host(), get_settings())
    comparison = compare(a.study, b.study, here=bench.here(a.study, b.study))
    blockers = comparison.blockers()
    stopping = [x for x in blockers if not (x.forceable and args.force)]
    ran: dict[str, Any] | None = None
    why_not: str | None = None
    if args.no_confirm:
        why_not = "--no-confirm"
    elif stopping:
        why_not = "; ".join(x.reason for x in stopping)
        if all(x.forceable for x in stopping):
            why_not += " (--force measures both here anyway)"
    else:
        options = PairOptions(rounds=args.rounds, max_rounds=args.max_rounds,
                              forced=tuple(x.reason for x in blockers))
        ran = bench.confirm(comparison, a, b, options=options, say=_progress)
        comparison = compare(a.study, b.study, here=comparison.here)  # with the new record
    if args.json:
        print(json.dumps({"comparison": comparison.to_dict(), "confirmation": ran,
                          "no_confirmation": why_not}, indent=2, default=str))
    else:
        print(render(comparison, ran=ran, why_not=why_not))
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr)


def _rounds(text: str) -> int:
    value = int(text)
    if not 2 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value}: expected 2 to 100 rounds")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``compare``."""
    p = sub.add_parser("compare", help="two studies' bests side by side, their knob "
                                       "differences and a paired confirmation of the two")
    p.add_argument("a", help="the first study (the ratio is b's best over a's)")
    p.add_argument("b", help="the second study")
    p.add_argument("--storage", help="the database of both (default: the study file's, "
                                     "else the local SQLite file)")
    p.add_argument("--storage-b", help="b's database, when it is not a's")
    p.add_argument("-f", "--file", help="study file naming the storage")
    p.add_argument("--no-confirm", action="store_true",
                   help="compare what is stored; run nothing")
    p.add_argument("--force", action="store_true",
                   help="confirm here even if the studies were measured on another host "
                        "class or measure different workloads")
    p.add_argument("--rounds", type=_rounds, help="rounds of the first look (default: the "
                                                  "larger confirm.rounds of the two)")
    p.add_argument("--max-rounds", type=_rounds, help="the round budget (default: the larger "
                                                      "confirm.max_rounds of the two)")
    p.add_argument("--json", action="store_true", help="the comparison as JSON")
    p.set_defaults(func=cmd_compare)
