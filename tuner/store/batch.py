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
upsert. The intermediate values reported meanwhile (``Batch.report``) go in the same
transaction: the trial's own copy has each at once (Optuna's pruners read that copy), the
database gets them when the batch ends, not one transaction per interval.
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
    """Stands in for a trial while attributes are collected (``Attr.put`` target), and
    holds the intermediate values reported meanwhile."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pending: dict[str, Any] = {}
        self.intermediate: dict[int, float] = {}

    def report(self, value: float, step: int) -> None:
        """``trial.report`` without its transaction: the trial's pruner sees the value at
        once (Optuna's pruners read the trial's own cached copy), the database gets it
        with the batch. A step already reported is ignored, as ``trial.report`` does."""
        cached = self.trial._cached_frozen_trial.intermediate_values
        if step in cached:
            return
        cached[step] = float(value)
        self.intermediate[step] = float(value)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return {**self.trial.user_attrs, **self.pending}

    def set_user_attr(self, key: str, value: Any) -> None:
        self.pending[key] = value


def write_user_attrs(storage: BaseStorage, trial_id: int, attrs: dict[str, Any],
                     intermediate: dict[int, float] | None = None) -> None:
    """Write ``attrs`` as user attributes of trial ``trial_id`` (and its ``intermediate``
    values): one transaction on an RDB storage (also behind Optuna's cache), one call each
    on any other."""
    _write(storage, trial_id, attrs, system=False, intermediate=intermediate)


def write_system_attrs(storage: BaseStorage, trial_id: int, attrs: dict[str, Any]) -> None:
    """``write_user_attrs`` for system attributes."""
    _write(storage, trial_id, attrs, system=True)


def _write(storage: BaseStorage, trial_id: int, attrs: dict[str, Any], *, system: bool,
           intermediate: dict[int, float] | None = None) -> None:
    intermediate = intermediate or {}
    if not attrs and not intermediate:
        return
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, RDBStorage):
        _write_rdb(backend, trial_id, attrs, system=system, intermediate=intermediate)
        return
    for key, value in attrs.items():
        if system:
            storage.set_trial_system_attr(trial_id, key, value)
        else:
            storage.set_trial_user_attr(trial_id, key, value)
    for step, number in sorted(intermediate.items()):
        storage.set_trial_intermediate_value(trial_id, step, number)


def _write_rdb(backend: RDBStorage, trial_id: int, attrs: dict[str, Any], *, system: bool,
               intermediate: dict[int, float]) -> None:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    model = models.TrialSystemAttributeModel if system else models.TrialUserAttributeModel
    with _create_scoped_session(backend.scoped_session, True) as session:
        insert = _UPSERTS.get(backend.engine.name)
        if insert is None:
            for key, value in attrs.items():
                backend._set_trial_attr_without_commit(session, model, trial_id, key, value)
            for step, number in sorted(intermediate.items()):
                backend._set_trial_intermediate_value_without_commit(
                    session, trial_id, step, number)
            return
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        backend.check_trial_is_updatable(trial_id, trial.state)
        if attrs:
            statement = insert(model).values([
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                for key, value in attrs.items()])
            session.execute(statement.on_conflict_do_update(
                index_elements=[model.trial_id, model.key],
                set_={"value_json": statement.excluded.value_json}))
        if intermediate:
            values = models.TrialIntermediateValueModel
            rows = []
            for step, number in sorted(intermediate.items()):
                stored, kind = values.intermediate_value_to_stored_repr(number)
                rows.append({"trial_id": trial_id, "step": step, "intermediate_value": stored,
                             "intermediate_value_type": kind})
            statement = insert(values).values(rows)
            session.execute(statement.on_conflict_do_update(
                index_elements=[values.trial_id, values.step],
                set_={"intermediate_value": statement.excluded.intermediate_value,
                      "intermediate_value_type": statement.excluded.intermediate_value_type}))


@contextlib.contextmanager
def batched(trial: optuna.Trial) -> Iterator[Batch]:
    """Collect the attributes written to the yielded ``Batch``; write them on leaving (also
    when the block raises: what was measured is kept)."""
    batch = Batch(trial)
    try:
        yield batch
    finally:
        write_user_attrs(trial.storage, trial._trial_id, batch.pending, batch.intermediate)
        trial._cached_frozen_trial.user_attrs.update(batch.pending)
