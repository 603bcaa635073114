"""Starting and stopping the children of one run.

Each child runs from an argument list (never a shell), in a session of its own so that its
whole process group can be stopped, and dies with the tuner (PR_SET_PDEATHSIG) so that a
killed tuner leaves no workload measuring behind its back. Where no binding tool exists the
child pins itself to its CPUs (``sched_setaffinity``) before it execs. Its output (stdout and
stderr together) is one pipe the read loop reads.

``Process`` is what the runner needs of a child: ``subprocess.Popen`` has it, and so does a
fork of the fork server; ``Spawn`` starts one (``start_process`` by default).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Protocol

from tuner.execution.launch import Instance, Launch

PR_SET_PDEATHSIG = 1

#: What starting a child may raise; the runner makes it a FAILED outcome.
START_ERRORS = (OSError, ValueError, subprocess.SubprocessError)


class Process(Protocol):
    """What the runner needs of a child: ``subprocess.Popen`` has it, so does a fork."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


#: Starts one child of a launch (one of its instances) with the given environment.
Spawn = Callable[[Launch, Instance, Mapping[str, str]], Process]


def child_setup(affinity: tuple[int, ...] | None) -> Callable[[], None]:
    """What a child runs between fork and exec: die with the parent, pin to ``affinity``."""

    def setup() -> None:  # runs in the child between fork and exec
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if affinity:
            os.sched_setaffinity(0, affinity)

    return setup


def start_process(launch: Launch, copy: Instance,
                  env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """A fresh process for one copy of ``launch``: its binding prefix, then the argv."""
    return subprocess.Popen(
        [*copy.prefix, *launch.argv], env=dict(env), cwd=launch.cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=child_setup(copy.affinity), close_fds=True)


def start_all(launch: Launch, env: Mapping[str, str], spawn: Spawn,
              kill_grace: float) -> list[Process]:
    """One child per copy of ``launch``. If one cannot start, those already started are
    stopped and the error (one of ``START_ERRORS``) is raised."""
    started: list[Process] = []
    for copy in launch.copies():
        try:
            started.append(spawn(launch, copy, env))
        except START_ERRORS:
            stop_all(started, kill_grace)
            raise
    return started


def stop(proc: Process, grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_all(procs: Sequence[Process], grace: float) -> None:
    for proc in procs:
        stop(proc, grace)
