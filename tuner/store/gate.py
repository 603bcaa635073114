"""The study gate: claiming a trial slot of a study is serialised across workers, from
counting the budget to Optuna committing the new trial, so a budget of N trials ends with
exactly N. A PostgreSQL advisory lock across machines; a file lock beside a SQLite database,
whose workers share one machine; a plain lock in memory."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy

from tuner.host import exclusive_file_lock


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
                with exclusive_file_lock(self._file):
                    yield
            else:
                yield

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
