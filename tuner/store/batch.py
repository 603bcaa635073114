"""Several trial attributes in one transaction.

Optuna's storages write each user attribute in a transaction of its own: on SQLite a commit,
on PostgreSQL a round trip or three and a commit, for each of the dozen attributes a trial
writes when it starts and again when it ends. ``batched(trial)`` collects what the
``Attr.put`` calls inside it write (they see ``Batch`` as the trial: its ``user_attrs``
include what is pending) and writes all of it at the end, in one transaction on an RDB
storage, one by one on any other storage. On SQLite and PostgreSQL the transaction checks
the trial once (it exists and is still running, as Optuna's own write does) and upserts
every attribute in one statement (the rows ``set_trial_user_attr`` would write: the same
table, key and JSON text); on other databases it goes through Optuna's per-attribute
upsert.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from sqlalchemy.dialects import postgresql, sqlite

#: The databases whose INSERT ... ON CONFLICT DO UPDATE takes many rows at once.
_UPSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Batch:
    """Stands in for a trial while attributes are collected (``Attr.put`` target)."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pending: dict[str, Any] = {}

    @property
    def user_attrs(self) -> dict[str, Any]:
        return {**self.trial.user_attrs, **self.pending}

    def set_user_attr(self, key: str, value: Any) -> None:
        self.pending[key] = value


def write_user_attrs(storage: BaseStorage, trial_id: int, attrs: dict[str, Any]) -> None:
    """Write ``attrs`` as user attributes of trial ``trial_id``: one transaction on an RDB
    storage (also behind Optuna's cache), one call each on any other."""
    _write(storage, trial_id, attrs, system=False)


def write_system_attrs(storage: BaseStorage, trial_id: int, attrs: dict[str, Any]) -> None:
    """``write_user_attrs`` for system attributes."""
    _write(storage, trial_id, attrs, system=True)


def _write(storage: BaseStorage, trial_id: int, attrs: dict[str, Any], *, system: bool) -> None:
    if not attrs:
        return
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, RDBStorage):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        model = models.TrialSystemAttributeModel if system else models.TrialUserAttributeModel
        with _create_scoped_session(backend.scoped_session, True) as session:
            insert = _UPSERTS.get(backend.engine.name)
            if insert is None:
                for key, value in attrs.items():
                    backend._set_trial_attr_without_commit(session, model, trial_id, key, value)
                return
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            backend.check_trial_is_updatable(trial_id, trial.state)
            statement = insert(model).values([
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                for key, value in attrs.items()])
            session.execute(statement.on_conflict_do_update(
                index_elements=[model.trial_id, model.key],
                set_={"value_json": statement.excluded.value_json}))
        return
    for key, value in attrs.items():
        if system:
            storage.set_trial_system_attr(trial_id, key, value)
        else:
            storage.set_trial_user_attr(trial_id, key, value)


@contextlib.contextmanager
def batched(trial: optuna.Trial) -> Iterator[Batch]:
    """Collect the attributes written to the yielded ``Batch``; write them on leaving (also
    when the block raises: what was measured is kept)."""
    batch = Batch(trial)
    try:
        yield batch
    finally:
        write_user_attrs(trial.storage, trial._trial_id, batch.pending)
        trial._cached_frozen_trial.user_attrs.update(batch.pending)
