"""Every backend, ready for a test: the modes and a supplier (as Optuna's
``testing/pytest_storages.py`` has ``STORAGE_MODES`` and ``StorageSupplier``).

``BACKEND_MODES`` names every way tuner can run a launch: fresh processes (``process``), forks
of a pre-imported server (``fork``), fresh processes under the host lock (``locked``), a
draw from a recorded surface (``replay``) and an instant fake (``instant``).
``PROCESS_MODES`` are those that run the launch's program for real. ``BackendSupplier(mode)``
is a context manager that gives a ready backend and closes it (and whatever it made: a lock
directory, a surface file) on exit.

The supplied fork backend preloads nothing beyond the workload module (a real one also
imports TensorFlow, seconds per server), so contract tests start a server in well under a
second; it forks built-in workloads (``python -m workloads.NAME``) and runs other programs as
fresh processes, as a real one does. ``flat_surface`` is a surface with one configuration
that answers every request: the replay backend and the ``workloads.replay`` program both
read it (``replay_launch``), so the same request is answered in every mode.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tuner.execution.backend import Backend, ProcessBackend
from tuner.execution.forkserver import ForkServerBackend
from tuner.execution.host_lock import HostLock, LockedBackend
from tuner.execution.launch import Launch
from tuner.host import probe_host
from tuner.space.search_space import config_key
from tuner.testing.fakes import InstantBackend
from tuner.testing.surfaces import ReplayBackend, Sample, Surface

BACKEND_MODES = ("process", "fork", "locked", "replay", "instant")
PROCESS_MODES = ("process", "fork", "locked")

#: The intervals (and their mean, the value) of the flat surface's one recorded run.
FLAT_INTERVALS = (100.0, 104.0, 96.0, 102.0, 98.0, 100.0)


def flat_surface(intervals: Sequence[float] = FLAT_INTERVALS, *,
                 metric: str = "throughput") -> Surface:
    """A surface without axes: its one configuration answers every request."""
    values = list(intervals)
    sample = Sample(value=sum(values) / len(values), intervals=values, startup=0.1,
                    seconds=0.1 + len(values) * 0.01)
    return Surface(name="flat", description="one configuration for every request",
                   synthetic=True, unit="items/s", maximize=True, axes={}, metric=metric,
                   configs={config_key({}): [sample]}, interval_seconds=0.01)


def replay_launch(surface_file: Path, *args: str, time_scale: float = 1.0) -> Launch:
    """``python -m workloads.replay`` of ``surface_file``: a real (and forkable) program
    that prints the surface's run under the workload contract, sleeping ``time_scale`` x the
    interval length before each interval."""
    return Launch(argv=(sys.executable, "-m", "workloads.replay", "--surface",
                        str(surface_file), "--time-scale", str(time_scale), "--seed", "0",
                        *args))


class BackendSupplier:
    """``with BackendSupplier(mode) as backend:`` a ready backend of that mode, closed on
    exit. ``surface_file`` is the flat surface the replay backend answers from, written
    for ``replay_launch`` too."""

    def __init__(self, mode: str) -> None:
        if mode not in BACKEND_MODES:
            raise ValueError(f"unknown backend mode {mode!r}; known: {', '.join(BACKEND_MODES)}")
        self.mode = mode
        self.surface = flat_surface()
        self._stack = contextlib.ExitStack()
        self.directory = Path()
        self.surface_file = Path()

    def _make(self) -> Backend:
        if self.mode == "process":
            return ProcessBackend()
        if self.mode == "fork":
            return ForkServerBackend(preload=())
        if self.mode == "locked":
            locks = self.directory / "locks"
            locks.mkdir()
            return LockedBackend(ProcessBackend(), HostLock(probe_host(), locks))
        if self.mode == "replay":
            return ReplayBackend(self.surface, seed=0)
        return InstantBackend()

    def __enter__(self) -> Backend:
        self.directory = Path(self._stack.enter_context(
            tempfile.TemporaryDirectory(prefix="tuner-backend-")))
        self.surface_file = self.directory / "flat.json"
        self.surface.save(self.surface_file)
        backend = self._make()
        self._stack.callback(backend.close)
        return backend

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.close()
