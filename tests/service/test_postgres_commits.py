"""tuner's PostgreSQL sessions commit without waiting for the WAL flush (a round trip, not
an fsync, per commit), and what one worker commits is seen by another at once, on the real
server."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy

from tests.service.test_workers import database  # noqa: F401 - the fixture
from tuner.store.database import open_storage

pytestmark = pytest.mark.postgres


def test_commits_do_not_wait_for_the_flush_and_are_seen_at_once(
        database: str) -> None:  # noqa: F811
    writer = open_storage(database, heartbeat=False)
    with writer.engine.connect() as connection:
        setting = connection.execute(sqlalchemy.text("SHOW synchronous_commit")).scalar()
    assert setting == "off"
    study = optuna.create_study(study_name="commits", storage=writer)
    reader = optuna.load_study(study_name="commits",
                               storage=open_storage(database, heartbeat=False))
    study.set_user_attr("noise", 0.05)
    assert reader.user_attrs == {"noise": 0.05}
    # a plain engine on the same server keeps the server's default
    plain = sqlalchemy.create_engine(database)
    try:
        with plain.connect() as connection:
            assert connection.execute(
                sqlalchemy.text("SHOW synchronous_commit")).scalar() == "on"
    finally:
        plain.dispose()
