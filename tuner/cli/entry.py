"""The ``tuner`` command's entry point: the parser built from each group's ``register`` and
``main``, which maps tuner's errors to one message and an exit status."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from tuner.cli import compare, machine, results, service, starting, studies
from tuner.errors import SpecError, TunerError

#: The groups of subcommands, in the order ``tuner --help`` lists them.
GROUPS = (starting, studies, results, compare, machine, service)


def _recover_system_settings() -> None:
    """Every command first puts back what a killed tuner left changed on this host."""
    from tuner.execution.system_backend import recover_at_start
    from tuner.settings import get_settings

    message = recover_at_start(get_settings())
    if message is not None:
        print(f"tuner: {message}", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _version_line() -> str:
    """``tuner X.Y.Z (Python A.B.C, Optuna V)``: what a bug report needs first."""
    import platform
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"tuner {version('tuner')} (Python {platform.python_version()}, "
            f"Optuna {version('optuna')})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuner", description="Automated performance tuning "
                                     "of ML workloads on CPUs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every system setting is restored on the way
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGHUP, _terminate)
    try:
        if args.func is not machine.cmd_restore:
            _recover_system_settings()
        return int(args.func(args))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except TunerError as exc:
        print(f"tuner: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `tuner list | head`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130

