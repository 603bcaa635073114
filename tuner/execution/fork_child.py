"""The server side of the fork server (``tuner.execution.forkserver``), run as its own
process: ``python -m tuner.execution.fork_child MODULE FD [PRELOAD,...]`` in tuner's own
interpreter; another interpreter (a runtime's, ``workload.python``) runs this file by its
path (``RUN_FILE``), so the module imports nothing but the standard library.

It imports the workload module and the ``preload_for`` modules (the module's framework:
TensorFlow, or PyTorch for ``workloads.torch_*``) once, tells the
tuner side it is ready on the socket ``FD``, and then, for each request, forks. The child
sets itself up as a fresh process would be (a new session, PR_SET_PDEATHSIG, its output on
the pipe that came with the request, the trial's environment, CPU affinity, the NUMA memory
policy numactl would have set) and runs the module as ``__main__``. The server answers each
request with the child's pid, then its exit status, both carrying the request's id.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import platform
import runpy
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from typing import Any

#: What a server imports besides the workload module, once, before its first fork (the
#: TensorFlow workloads'; ``preload_for`` gives each module's).
PRELOAD = ("tensorflow",)
#: What the PyTorch workloads' servers import.
TORCH_PRELOAD = ("torch",)
#: prctl(2): the signal a child gets when its parent dies (tuner.execution.children too).
PR_SET_PDEATHSIG = 1
#: ``python -c RUN_FILE PATH ARGS...`` runs the file PATH as ``__main__`` without putting
#: its folder on ``sys.path`` (a script's folder would shadow modules by its siblings).
RUN_FILE = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
_SET_MEMPOLICY = {"x86_64": 238, "aarch64": 237}
_MPOL = {"bind": 2, "interleave": 3, "local": 4}


def preload_for(module: str) -> tuple[str, ...]:
    """The framework a workload module's server imports before its first fork."""
    return TORCH_PRELOAD if module.startswith("workloads.torch_") else PRELOAD


def _cpu_list(text: str) -> list[int]:
    """The kernel's list format (``0-3,8``), as ``tuner.host.parse_cpu_list`` reads it."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.strip().split(","))):
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def set_mempolicy(option: str) -> None:
    """Apply a numactl memory option (--membind=, --interleave=, --localalloc) to this
    process with the set_mempolicy system call."""
    number = _SET_MEMPOLICY.get(platform.machine())
    if number is None:
        raise OSError(f"set_mempolicy is not wired for {platform.machine()}")
    if option == "--localalloc":
        mode, nodes = _MPOL["local"], []
    else:
        name, _, value = option.lstrip("-").partition("=")
        mode = _MPOL["bind" if name == "membind" else "interleave"]
        if value == "all":
            with open("/sys/devices/system/node/online", encoding="ascii") as online:
                value = online.read()
        nodes = _cpu_list(value)
        if not nodes:
            raise ValueError(f"no NUMA node in {option!r}")
    bits = ctypes.c_ulong * (max(nodes, default=0) // 64 + 1)
    mask = bits()
    for node in nodes:
        mask[node // 64] |= 1 << (node % 64)
    libc = ctypes.CDLL(None, use_errno=True)
    maxnode = (max(nodes, default=0) // 64 + 1) * 64 + 1
    if libc.syscall(number, mode, mask if nodes else None, maxnode if nodes else 0) != 0:
        raise OSError(ctypes.get_errno(), f"set_mempolicy({option}) failed")


def _child(module: str, request: dict[str, Any], out_fd: int, control: socket.socket) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setsid()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        control.close()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), line_buffering=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), line_buffering=True)
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("cpus"):
            os.sched_setaffinity(0, request["cpus"])
        if request.get("memory"):
            set_mempolicy(request["memory"])
        common = sys.modules.get("workloads._common")
        if common is not None:
            common.forked()
        sys.argv = [module, *request["args"]]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(module: str, fd: int, preload: tuple[str, ...] = PRELOAD) -> None:
    """The server's loop: one fork per request, its pid, then its exit status. Before the
    first fork it imports ``module`` and the ``preload`` modules that are installed."""
    control = socket.socket(fileno=fd)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import importlib

    importlib.import_module(module)
    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _send(control, {"ready": True, "threads": len(os.listdir("/proc/self/task")),
                    "pid": os.getpid()})
    reader = control.makefile("rb")
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 1)
        if not message:
            return
        request = json.loads(message)
        ident = request.get("id")
        pid = os.fork()
        if pid == 0:
            reader.close()
            _child(module, request, fds[0], control)
        os.close(fds[0])
        _send(control, {"id": ident, "pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(control, {"id": ident, "exit": pid, "status": os.waitstatus_to_exitcode(status)})


def main(argv: Sequence[str]) -> None:
    """``MODULE FD [PRELOAD,...]``: serve ``MODULE`` on the socket ``FD``."""
    preload = (tuple(filter(None, argv[2].split(","))) if len(argv) > 2
               else preload_for(argv[0]))
    serve(argv[0], int(argv[1]), preload)


if __name__ == "__main__":
    main(sys.argv[1:])
