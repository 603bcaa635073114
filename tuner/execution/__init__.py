"""Running one launch. ``Launch`` (launch.py) is what a trial runs: argument list,
environment, binding prefix per instance. A ``RunRequest`` (the launch, the metric and its
``ParserSpec``, the timeout, the environment) goes to a ``Backend`` (backend.py: fresh
processes; forkserver.py: forks of a pre-imported server, whose own process is fork_child.py;
host_lock.py: any backend under the per-NUMA-node host lock; system_backend.py: runs whose
launch changes the machine, through the journal of system_journal.py and the reads and
writes of system_settings.py), which answers an ``Outcome``
(outcome.py) and never raises for what the workload does. The runner (runner.py, ``run``) is
the fresh-process path: children.py starts and stops the processes, read_loop.py streams
their output line by line through the parsers (parsers.py) to the ``OnReading`` callback,
whose ``Decision`` may prune the run or end it early, and outcome.py builds the answer.

May import: the top-level modules (``errors``, ``settings``, ``host``, ``stats``, ``goal``)
and ``spec``; nothing higher."""

from tuner.execution.backend import Backend, ProcessBackend
from tuner.execution.children import Process, Spawn
from tuner.execution.forkserver import ForkServer, ForkServerBackend, backend_for
from tuner.execution.host_lock import HostLock, LockedBackend
from tuner.execution.launch import Instance, Launch, LaunchBuilder
from tuner.execution.outcome import Decision, OnReading, Outcome, Status
from tuner.execution.parsers import (
    PARSER_PRESETS,
    JsonLineParser,
    Parser,
    ProtocolParser,
    Reading,
    RegexParser,
    final_values,
    interval_values,
    make_parser,
    metric_names,
)
from tuner.execution.runner import RunHooks, RunRequest, run
from tuner.execution.system_backend import SystemBackend, journal_of, with_system_settings
from tuner.execution.system_journal import CRASH_POINTS, CannotApply, Journal, Recovery
from tuner.execution.system_settings import SystemSetting

__all__ = [
    "CRASH_POINTS",
    "PARSER_PRESETS",
    "Backend",
    "CannotApply",
    "Decision",
    "ForkServer",
    "ForkServerBackend",
    "HostLock",
    "Instance",
    "Journal",
    "JsonLineParser",
    "Launch",
    "LaunchBuilder",
    "LockedBackend",
    "OnReading",
    "Outcome",
    "Parser",
    "ProcessBackend",
    "Process",
    "ProtocolParser",
    "Reading",
    "Recovery",
    "RegexParser",
    "RunHooks",
    "RunRequest",
    "Spawn",
    "Status",
    "SystemBackend",
    "SystemSetting",
    "backend_for",
    "final_values",
    "interval_values",
    "journal_of",
    "make_parser",
    "metric_names",
    "run",
    "with_system_settings",
]
