"""Trial attributes written together: one transaction on a database, the same values as one
``set_user_attr`` each, on every storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import sqlalchemy

from tuner.store.attributes import APPLIED, RUNS, SAMPLES
from tuner.store.batch import batched
from tuner.store.database import open_storage
from tuner.store.values import Run


def storages(tmp_path: Path) -> dict[str, optuna.storages.BaseStorage]:
    return {"memory": optuna.storages.InMemoryStorage(),
            "sqlite": open_storage(f"sqlite:///{tmp_path}/batch.db", heartbeat=False)}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_batch_stores_what_single_writes_store(tmp_path: Path, kind: str) -> None:
    storage = storages(tmp_path)[kind]
    study = optuna.create_study(storage=storage, study_name=f"batch-{kind}")
    single, together = study.ask(), study.ask()
    long_runs = [Run(status="ok", reason="", tail="x" * 3000) for _ in range(12)]
    APPLIED.put(single, {"intra_op": 2})
    SAMPLES.put(single, [1.0, 2.0])
    RUNS.put(single, long_runs)  # long enough to go in parts
    with batched(together) as batch:
        APPLIED.put(batch, {"intra_op": 2})
        SAMPLES.put(batch, [1.0, 2.0])
        RUNS.put(batch, long_runs)
        assert SAMPLES.get(batch) == [1.0, 2.0]  # what is pending reads back
    assert together.user_attrs == single.user_attrs  # the trial's own view is updated too
    stored = {t.number: t.user_attrs for t in study.get_trials()}
    assert stored[together.number] == stored[single.number]
    assert any("~" in key for key in stored[together.number])  # in parts, like the single


def test_on_a_database_a_batch_is_one_commit(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/commits.db", heartbeat=False)
    study = optuna.create_study(storage=storage, study_name="commits")
    trial = study.ask()
    backend = getattr(storage, "_backend", storage)
    commits: list[int] = []
    sqlalchemy.event.listen(backend.engine, "commit", lambda _: commits.append(1))
    with batched(trial) as batch:
        for index in range(10):
            batch.set_user_attr(f"key{index}", index)
    assert len(commits) == 1
    commits.clear()
    for index in range(10):
        trial.set_user_attr(f"single{index}", index)
    assert len(commits) == 10
