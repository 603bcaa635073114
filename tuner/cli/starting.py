"""``tuner init``: a first study file for this host, or one of the example studies that ship
with tuner."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuner.errors import TunerError


def cmd_init(args: argparse.Namespace) -> int:
    from tuner.spec.examples import example_names, example_text

    if args.list_examples:
        for name, path in example_names().items():
            print(f"{name:<26} ({path.name})")
        return 0
    if args.example:
        try:
            text = example_text(args.example)
        except KeyError:
            raise TunerError(f"no example study named {args.example!r}; the examples are "
                             f"{', '.join(example_names())} (tuner init --list-examples)"
                             ) from None
    else:
        text = _written_for_this_host(args)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        raise TunerError(f"{out} exists; choose another file (-o FILE) or overwrite it "
                         "with --force")
    out.write_text(text)
    print(f"wrote {out}; check it with `tuner validate {out}`, run it with "
          f"`tuner tune {out}`", file=sys.stderr)
    return 0


def _written_for_this_host(args: argparse.Namespace) -> str:
    from tuner.host import probe_host
    from tuner.space.host_report import builtin_workloads
    from tuner.space.starter import CommandStart, builtin_study, command_study

    host = probe_host()
    if args.command:
        parser: dict[str, str] | str = ({"regex": args.regex} if args.regex else
                                        {"json": args.json_key} if args.json_key else
                                        "protocol")
        start = CommandStart(argv=tuple(args.command), parser=parser, runtime=args.runtime)
        return command_study(start, host, name=args.name)
    workload = args.workload
    if workload is None:
        # a light install (no TensorFlow) starts from the NumPy proxy, which needs nothing
        workload = "resnet" if builtin_workloads()["resnet"]["available"] else "proxy"
        print(f"note: a study of the built-in workload {workload} (--workload NAME or "
              "--command PROGRAM ... for others)", file=sys.stderr)
    return builtin_study(workload, host, name=args.name)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``init``."""
    from tuner.spec.builtin_workloads import BUILTINS

    p = sub.add_parser("init", help="write a first study file for this host (a built-in "
                                    "workload, a command, or one of the examples)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--workload", choices=sorted(BUILTINS),
                      help="a built-in workload (default: resnet, or proxy without "
                           "TensorFlow)")
    what.add_argument("--command", nargs=argparse.REMAINDER, metavar="PROGRAM ...",
                      help="a program and its arguments (the rest of the line; {threads} "
                           "in an argument becomes a knob)")
    what.add_argument("--example", metavar="NAME", help="one of the example studies")
    what.add_argument("--list-examples", action="store_true",
                      help="list the example studies")
    p.add_argument("-o", "--output", default="study.yaml",
                   help="the file to write (default study.yaml; - for standard output)")
    p.add_argument("--name", help="the study's name")
    p.add_argument("--force", action="store_true", help="overwrite the file")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--regex", help="with --command: a pattern with a named group "
                                     "(?P<throughput>...) that finds the metric")
    how.add_argument("--json", dest="json_key", metavar="KEY",
                     help="with --command: the metric is KEY of the JSON lines it prints")
    p.add_argument("--runtime", choices=("native", "openmp", "tensorflow", "torch"),
                   default="native", help="with --command: what the program runs on")
    p.set_defaults(func=cmd_init)
