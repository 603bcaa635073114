"""The two locks that keep measurements honest when several workers share studies.

* ``StudyGate``: claiming a trial slot of a study is serialised across workers, from counting
  the budget to Optuna committing the new trial, so a budget of N trials ends with exactly N
  (a PostgreSQL advisory lock across machines; a file lock beside a SQLite database, whose
  workers share one machine; a plain lock in memory).
* ``HostLock``: only one worker measures on a machine at a time, as concurrent trials would
  measure each other. The lock is one file per NUMA node; a run takes the nodes its CPUs sit
  on (all of them when it is not bound), so trials pinned to disjoint nodes may run side by
  side and nothing else does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy

from tuner.host import Host
from tuner.measure import Backend, RunRequest
from tuner.parsers import Reading
from tuner.runner import Outcome


def _key(name: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class StudyGate:
    """A lock per study, across every worker that shares its storage."""

    def __init__(self, storage_url: str, study: str) -> None:
        self.study = study
        self._local = threading.Lock()
        self._engine: sqlalchemy.engine.Engine | None = None
        self._file: Path | None = None
        if storage_url.startswith("postgresql"):
            self._engine = sqlalchemy.create_engine(storage_url, poolclass=sqlalchemy.pool.NullPool)
        elif storage_url.startswith("sqlite:///") and storage_url != "sqlite:///:memory:":
            database = Path(storage_url[len("sqlite:///"):])
            digest = hashlib.sha256(study.encode()).hexdigest()[:16]
            self._file = database.with_name(f"{database.name}.{digest}.lock")

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._local:
            if self._engine is not None:
                with self._engine.connect() as connection:
                    key = _key(f"tuner-study:{self.study}")
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    try:
                        yield
                    finally:
                        connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"),
                                           {"k": key})
                        connection.commit()
            elif self._file is not None:
                with _flock(self._file):
                    yield
            else:
                yield

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class HostLock:
    """One worker measures on a machine at a time, per NUMA node."""

    def __init__(self, host: Host, directory: Path) -> None:
        self.host = host
        self.directory = directory

    def nodes_for(self, cpus: Any) -> list[int]:
        topo = self.host.topology
        if not cpus:
            return list(topo.nodes)
        wanted = set(cpus)
        return sorted({c.node for c in topo.cpus if c.id in wanted}) or list(topo.nodes)

    @contextlib.contextmanager
    def hold(self, cpus: Any = None) -> Iterator[None]:
        """Hold the locks of the nodes ``cpus`` sit on (all nodes when None), in node order
        so two workers never wait on each other in a cycle."""
        with contextlib.ExitStack() as stack:
            for node in self.nodes_for(cpus):
                stack.enter_context(_flock(self.directory / f"host-node{node}.lock"))
            yield


class LockedBackend(Backend):
    """Wraps a backend so that every run holds the host lock for the CPUs it binds."""

    def __init__(self, inner: Backend, lock: HostLock) -> None:
        self.inner = inner
        self.lock = lock

    def run(self, request: RunRequest,
            on_reading: Callable[[Reading], bool | str] | None) -> Outcome:
        copies = request.launch.copies()
        cpus = None if any(c.cpus is None for c in copies) else [
            cpu for c in copies for cpu in (c.cpus or ())]
        with self.lock.hold(cpus):
            return self.inner.run(request, on_reading)

    def close(self) -> None:
        self.inner.close()
