"""A pre-imported fork server for built-in workloads: the interpreter start and the
TensorFlow import (2-3 s of every trial) are paid once, not per trial.

The server (``tuner.execution.fork_child``, its own process) imports the workload module and
TensorFlow (``PRELOAD``), runs no TensorFlow op, and then, for each trial, forks. The child
is a fresh TensorFlow runtime: no context, no thread pool exists before the fork, so the child's own
``--inter-op``/``--intra-op`` and ``TF_NUM_*`` settings size its pools exactly as in a new
process (the tests compare the two). In the child, before the workload's ``main`` runs:
a new session and PR_SET_PDEATHSIG (it dies with the server, which dies with tuner), its
output on the runner's pipe, the trial's environment, CPU affinity (``sched_setaffinity``)
and NUMA memory policy (``set_mempolicy``, what numactl would have set).

Every request carries an id, and both of the server's answers to it (the child's pid, then
its exit status) carry that id and the pid: the tuner side routes each answer to the request
that asked, so an answer that arrives after the runner stopped waiting (a trial killed at its
timeout whose exit status came late) is dropped, never taken for the next trial's. A child
started for a request that stopped waiting for it is killed.

Runtimes read some variables at import time (``TF_ENABLE_ONEDNN_OPTS``, the OpenMP and MKL
variables); those are the server's own environment, so trials that differ in them get
different servers. OpenMP runtimes read ``OMP_*``/``KMP_*``/``GOMP_*`` when they initialise,
which in a child forked from a server that imported the framework has already happened; the
dynamic loader reads ``LD_PRELOAD`` (an allocator, Intel's OpenMP) at exec, and allocators
their own variables when they initialise: all of them are import-time variables, so a
server is started with the trial's values and serves only trials with the same values (a
child then maps exactly what a fresh process with that environment maps after the same
imports). Servers are keyed by the launch's interpreter as well: a runtime's interpreter
(``workload.python``) gets servers of its own, started with that interpreter, which import
that runtime's framework. Launches that are not ``PYTHON -m workloads.NAME``, run several
instances, or set a working directory go to fresh processes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from tuner.execution import runner
from tuner.execution.backend import Backend, ProcessBackend, unapplied_system
from tuner.execution.children import child_setup
from tuner.execution.fork_child import PRELOAD, RUN_FILE, main, preload_for, set_mempolicy
from tuner.execution.launch import Instance, Launch
from tuner.execution.outcome import OnReading, Outcome
from tuner.execution.runner import RunHooks, RunRequest

__all__ = ["PRELOAD", "ForkServer", "ForkServerBackend", "Forked", "backend_for",
           "import_time_env", "interpreter_of", "plan", "preload_for", "server_argv",
           "set_mempolicy"]

#: Prefixes of the variables read when a process starts or a runtime initialises: the
#: frameworks' (TensorFlow, oneDNN, PyTorch), OpenMP's (GNU, Intel/LLVM), the BLAS
#: libraries', the dynamic loader's (``LD_PRELOAD``, ``LD_LIBRARY_PATH``), the allocators'
#: (glibc ``MALLOC_*``, jemalloc ``MALLOC_CONF``, ``TCMALLOC_*``) and Python's.
IMPORT_TIME = ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_", "TF_XLA_", "OMP_", "KMP_", "MKL_", "GOMP_",
               "ONEDNN_", "DNNL_", "PYTHON", "LD_", "MALLOC_", "TCMALLOC_", "JE_MALLOC_",
               "OPENBLAS_", "GOTO_", "BLIS_", "TORCH_", "ATEN_")

logger = logging.getLogger(__name__)


#: One server per interpreter, workload module and import-time environment.
ServerKey = tuple[str, str, tuple[tuple[str, str], ...]]


def import_time_env(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME)))


def plan(launch: Launch) -> tuple[str, list[str]] | None:
    """The workload module and its arguments, if the fork server can run this launch."""
    argv = list(launch.argv)
    if (len(argv) >= 3 and argv[1] == "-m" and argv[2].startswith("workloads.")
            and not launch.instances and launch.cwd is None):
        return argv[2], argv[3:]
    return None


def interpreter_of(launch: Launch) -> str:
    """The interpreter a planned launch names (built-ins name it by its absolute path;
    anything else is taken for tuner's own)."""
    first = launch.argv[0]
    return first if os.path.isabs(first) else sys.executable


def server_argv(python: str, module: str, fd: int, preload: tuple[str, ...]) -> list[str]:
    """How the server starts: ``-m tuner.execution.fork_child`` in tuner's own interpreter;
    in another (which cannot import tuner) the file ``fork_child.py`` by its path."""
    args = [module, str(fd), ",".join(preload)]
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return [python, "-m", "tuner.execution.fork_child", *args]
    from tuner.execution import fork_child

    return [python, "-c", RUN_FILE, str(fork_child.__file__), *args]


# --- the tuner side --------------------------------------------------------------------------


class Forked:
    """A child of the server, as the runner sees a process (pid, stdout, wait). Its exit
    status is the server's answer that names its request and its pid, nothing else."""

    def __init__(self, server: ForkServer, request: int, pid: int,
                 stdout: BinaryIO) -> None:
        self.server = server
        self.request = request
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self.server.pump(
                lambda: self.returncode is not None, timeout):
            raise subprocess.TimeoutExpired(f"forked pid {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode


class ForkServer:
    """One server process, pre-imported for one module (and ``preload``) and one
    import-time environment."""

    def __init__(self, module: str, env: Mapping[str, str], python: str = sys.executable,
                 start_timeout: float = 300.0, preload: tuple[str, ...] | None = None
                 ) -> None:
        ours, theirs = socket.socketpair()
        self.module = module
        self.python = python
        preload = preload_for(module) if preload is None else preload
        self.proc = subprocess.Popen(
            server_argv(python, module, theirs.fileno(), preload),
            env=dict(env),
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, preexec_fn=child_setup(None), close_fds=True)
        theirs.close()
        self.sock = ours
        self.buffer = b""
        self.dead = False
        self._ids = itertools.count(1)
        self._awaiting: int | None = None  # the request whose spawn waits for its pid
        self._started: dict[int, int] = {}  # request -> pid, answered to that spawn
        #: Children someone may still wait for, by request; a child the runner gave up on
        #: drops out, and its late exit status with it.
        self._children: weakref.WeakValueDictionary[int, Forked] = (
            weakref.WeakValueDictionary())
        ready = self.receive(start_timeout)
        if not ready or not ready.get("ready"):
            error = self.proc.stderr.read().decode(errors="replace")[-2000:] if (
                self.proc.poll() is not None and self.proc.stderr) else "no answer"
            self.close()
            raise OSError(f"the fork server for {module} did not start: {error}")
        self.threads = int(ready["threads"])

    def receive(self, timeout: float | None) -> dict[str, Any] | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return {"dead": True}
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return dict(json.loads(line))

    def pump(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Read the server's messages one at a time, routing each to the request it answers,
        until ``done()``; False if ``timeout`` passes first. (One at a time: a message that
        follows the awaited one stays unread until its own request is registered.)"""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            if self.dead:
                return False
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            message = self.receive(left)
            if message is None:
                return False
            self._route(message)
        return True

    def _route(self, message: dict[str, Any]) -> None:
        ident = message.get("id")
        if message.get("dead"):
            # the server is gone, and its children with it (PR_SET_PDEATHSIG)
            self.dead = True
            for orphan in list(self._children.values()):
                if orphan.returncode is None:
                    orphan.returncode = -9
            return
        if "exit" in message:
            child = self._children.get(ident) if isinstance(ident, int) else None
            if child is not None and child.pid == message["exit"]:
                child.returncode = int(message["status"])
            else:
                logger.debug("fork server: dropped a stale exit status %s", message)
            return
        if "pid" in message:
            pid = int(message["pid"])
            if ident is not None and ident == self._awaiting:
                self._started[ident] = pid
                return
            # started for a request that gave up waiting: nobody reads its output
            logger.warning("fork server: killing pid %d, started for request %s that no "
                           "longer waits for it", pid, ident)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            return
        logger.debug("fork server: dropped an unexpected message %s", message)

    def spawn(self, args: list[str], env: Mapping[str, str], copy: Instance) -> Forked:
        ident = next(self._ids)
        read_end, write_end = os.pipe()
        request = {"id": ident, "args": args, "env": dict(env),
                   "cpus": list(copy.cpus) if copy.cpus else None, "memory": copy.memory}
        self._awaiting = ident
        try:
            try:
                socket.send_fds(self.sock, [json.dumps(request).encode()], [write_end])
            finally:
                os.close(write_end)
            self.pump(lambda: ident in self._started, 60.0)
        finally:
            self._awaiting = None
        pid = self._started.pop(ident, None)
        if pid is None:
            os.close(read_end)
            raise OSError("the fork server did not start the trial" + (
                " (it has exited)" if self.dead else ""))
        forked = Forked(self, ident, pid, os.fdopen(read_end, "rb", buffering=0))
        self._children[ident] = forked
        return forked

    @property
    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class ForkServerBackend(Backend):
    """Runs built-in workloads as forks of pre-imported servers; anything else as fresh
    processes. At most ``max_servers`` servers live at once (least recently used go);
    each runs in the launch's interpreter and imports ``preload`` (None: the module's
    framework, ``preload_for``) once, before its first fork."""

    def __init__(self, *, max_servers: int = 3,
                 preload: tuple[str, ...] | None = None) -> None:
        self.max_servers = max_servers
        self.preload = preload
        self.servers: OrderedDict[ServerKey, ForkServer] = OrderedDict()
        self.fresh = ProcessBackend()
        self.failures: dict[ServerKey, str] = {}

    def server_for(self, module: str, env: Mapping[str, str],
                   python: str = sys.executable) -> ForkServer | None:
        key: ServerKey = (python, module, import_time_env(env))
        if key in self.failures:
            return None
        server = self.servers.get(key)
        if server is not None and server.alive:
            self.servers.move_to_end(key)
            return server
        if server is not None:
            server.close()
        while len(self.servers) >= self.max_servers:
            _, old = self.servers.popitem(last=False)
            old.close()
        base = {k: v for k, v in env.items() if not k.startswith("TF_NUM_")}
        try:
            server = ForkServer(module, base, python=python, preload=self.preload)
        except OSError as exc:
            self.failures[key] = str(exc)
            return None
        self.servers[key] = server
        return server

    def run(self, request: RunRequest,
            on_reading: OnReading | None) -> Outcome:
        refused = unapplied_system(request)
        if refused is not None:
            return refused
        target = plan(request.launch)
        env = {**request.base_env, **request.launch.env}
        server = (self.server_for(target[0], env, interpreter_of(request.launch))
                  if target else None)
        if target is None or server is None:
            return self.fresh.run(request, on_reading)
        args = target[1]

        def spawn(launch: Launch, copy: Instance, child_env: Mapping[str, str]) -> Forked:
            return server.spawn(args, child_env, copy)

        return runner.run(request, on_reading, RunHooks(spawn=spawn))

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()



def backend_for(launcher: str) -> Backend:
    """The backend a study's ``launcher`` setting asks for: forks of a pre-imported server
    (``fork``, the default) or fresh processes."""
    return ForkServerBackend() if launcher == "fork" else ProcessBackend()


if __name__ == "__main__":
    main(sys.argv[1:])
