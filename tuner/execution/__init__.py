"""Running one launch: the ``Launch`` value object (argument list, environment, command
prefix per instance), the parsers that turn output lines into readings, the runner that
starts fresh processes and returns an ``Outcome``, and the backends that run a
``RunRequest`` (a fresh process, a fork of a pre-imported server) with the host lock.

May import: the top-level modules (``host``, ``settings``, ``errors``) and ``spec``."""

from tuner.execution.backend import Backend, ProcessBackend, RunRequest
from tuner.execution.forkserver import ForkServer, ForkServerBackend, backend_for
from tuner.execution.host_lock import HostLock, LockedBackend
from tuner.execution.launch import Instance, Launch, LaunchBuilder
from tuner.execution.parsers import (
    PARSER_PRESETS,
    JsonLineParser,
    Parser,
    ProtocolParser,
    Reading,
    RegexParser,
    make_parser,
    metric_names,
)
from tuner.execution.runner import Outcome, Status, run

__all__ = [
    "PARSER_PRESETS",
    "Backend",
    "ForkServer",
    "ForkServerBackend",
    "HostLock",
    "Instance",
    "JsonLineParser",
    "Launch",
    "LaunchBuilder",
    "LockedBackend",
    "Outcome",
    "Parser",
    "ProcessBackend",
    "ProtocolParser",
    "Reading",
    "RegexParser",
    "RunRequest",
    "Status",
    "backend_for",
    "make_parser",
    "metric_names",
    "run",
]
