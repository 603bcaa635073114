"""The host lock: only one worker measures on a machine at a time, as concurrent trials
would measure each other. The lock is one file per NUMA node; a run takes the nodes its CPUs
sit on (all of them when it is not bound), so trials pinned to disjoint nodes may run side by
side and nothing else does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from pathlib import Path

from tuner.execution.backend import Backend
from tuner.execution.outcome import OnReading, Outcome
from tuner.execution.runner import RunRequest
from tuner.host import Host, exclusive_file_lock


class HostLock:
    """One worker measures on a machine at a time, per NUMA node."""

    def __init__(self, host: Host, directory: Path) -> None:
        self.host = host
        self.directory = directory

    def nodes_for(self, cpus: Collection[int] | None) -> list[int]:
        """The NUMA nodes ``cpus`` sit on, in order (every node when None or empty)."""
        topo = self.host.topology
        if not cpus:
            return list(topo.nodes)
        wanted = set(cpus)
        return sorted({c.node for c in topo.cpus if c.id in wanted}) or list(topo.nodes)

    @contextlib.contextmanager
    def hold(self, cpus: Collection[int] | None = None) -> Iterator[None]:
        """Hold the locks of the nodes ``cpus`` sit on (all nodes when None), in node order
        so two workers never wait on each other in a cycle."""
        with contextlib.ExitStack() as stack:
            for node in self.nodes_for(cpus):
                stack.enter_context(exclusive_file_lock(self.directory / f"host-node{node}.lock"))
            yield


class LockedBackend(Backend):
    """Wraps a backend so that every run holds the host lock for the CPUs it binds."""

    def __init__(self, inner: Backend, lock: HostLock) -> None:
        self.inner = inner
        self.lock = lock

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        copies = request.launch.copies()
        cpus = None if any(c.cpus is None for c in copies) else [
            cpu for c in copies for cpu in (c.cpus or ())]
        with self.lock.hold(cpus):
            return self.inner.run(request, on_reading)

    def close(self) -> None:
        self.inner.close()
