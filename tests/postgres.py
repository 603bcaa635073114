"""A fresh PostgreSQL database for a test, on the server ``TUNER_TEST_POSTGRES`` names
(default: this machine's, trust auth), dropped afterwards with its connections."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy

SERVER = os.environ.get("TUNER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@contextlib.contextmanager
def fresh_database(prefix: str = "tuner_test") -> Iterator[str]:
    """The URL of a new database; ``TUNER_KEEP_TEST_DB=1`` keeps it for a look after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT",
                                     connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {SERVER} (start it; .ci/run does): {exc}")
    try:
        yield f"{SERVER}/{name}"
    finally:
        if os.environ.get("TUNER_KEEP_TEST_DB"):
            print("kept", f"{SERVER}/{name}")
        else:
            with admin.connect() as connection:
                connection.execute(sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n"), {"n": name})
                connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
