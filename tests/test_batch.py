"""Trial attributes written together: one transaction on a database, the same values as one
``set_user_attr`` each, on every storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from tests.postgres import fresh_database
from tuner.store.attributes import APPLIED, RUNS, SAMPLES
from tuner.store.batch import batched
from tuner.store.database import open_storage
from tuner.store.values import Run


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_database("tuner_batch") as url:
        yield url


def storage_of(kind: str, tmp_path: Path, request: pytest.FixtureRequest
               ) -> optuna.storages.BaseStorage:
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "sqlite":
        return open_storage(f"sqlite:///{tmp_path}/batch.db", heartbeat=False)
    return open_storage(request.getfixturevalue("postgres_url"), heartbeat=False)


@pytest.mark.parametrize("kind", ["memory", "sqlite",
                                  pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_batch_stores_what_single_writes_store(tmp_path: Path, kind: str,
                                                 request: pytest.FixtureRequest) -> None:
    storage = storage_of(kind, tmp_path, request)
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
    with batched(together) as batch:  # a second batch over the same keys updates them
        APPLIED.put(batch, {"intra_op": 4})
    assert APPLIED.get(study.get_trials()[together.number]) == {"intra_op": 4}
    study.tell(together, 1.0)
    with pytest.raises(RuntimeError, match="finished"):  # a finished trial is not written
        with batched(together) as batch:
            batch.set_user_attr("late", 1)


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


@pytest.mark.parametrize("kind", ["memory", "sqlite",
                                  pytest.param("postgres", marks=pytest.mark.postgres)])
def test_intermediate_values_reported_in_a_batch_are_stored_as_reports_store_them(
        tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    """``Batch.report``: the trial (and so its pruner) sees each value at once, the
    database gets them when the batch ends, the same values ``trial.report`` stores
    (infinite and NaN included); a step already reported is ignored, as report does."""
    storage = storage_of(kind, tmp_path, request)
    study = optuna.create_study(storage=storage, study_name=f"report-{kind}")
    single, together = study.ask(), study.ask()
    values = {1: 10.5, 2: 11.0, 3: float("inf"), 4: float("nan")}
    for step, value in values.items():
        single.report(value, step)
    with batched(together) as batch:
        for step, value in values.items():
            batch.report(value, step)
            assert step in together._get_latest_trial().intermediate_values  # pruner view
        batch.report(99.0, 1)  # already reported: ignored
        if kind != "memory":  # a database holds them only once the batch is written
            assert study.get_trials()[together.number].intermediate_values == {}
    stored = {t.number: t.intermediate_values for t in study.get_trials()}
    assert str(stored[together.number]) == str(stored[single.number])
    assert stored[together.number][1] == 10.5
