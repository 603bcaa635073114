"""Several trial attributes in one transaction.

Optuna's storages write each user attribute in a transaction of its own: on SQLite a commit,
on PostgreSQL a round trip or three and a commit, for each of the dozen attributes a trial
writes when it starts and again when it ends. ``batched(trial)`` collects what the
``Attr.put`` calls inside it write (they see ``Batch`` as the trial: its ``user_attrs``
include what is pending) and writes all of it at the end, in one transaction on an RDB
storage (through the storage's own per-attribute upsert, so what is stored is exactly what
``set_trial_user_attr`` would have stored), one by one on any other storage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage


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
            for key, value in attrs.items():
                backend._set_trial_attr_without_commit(session, model, trial_id, key, value)
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
