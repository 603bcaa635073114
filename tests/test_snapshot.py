"""Reading a study once per stretch of work (tuner.store.snapshot): inside a block the
study's attributes and trial list are read from the storage once, a write of a study
attribute is seen by the next read, and outside a block every read goes to the storage."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest

from tuner.store import snapshot
from tuner.store.attributes import NOISE, STATUS
from tuner.store.database import live_trials
from tuner.store.values import Noise


@pytest.fixture()
def counted() -> tuple[optuna.Study, Counter[str]]:
    study = optuna.create_study()
    calls: Counter[str] = Counter()
    storage = study._storage
    for name in ("get_all_trials", "get_study_user_attrs", "get_best_trial"):
        original = getattr(storage, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(storage, name, spy)
    study.optimize(lambda t: t.suggest_int("x", 0, 9), n_trials=3)
    calls.clear()
    return study, calls


def test_a_block_reads_the_study_once(counted: tuple[optuna.Study, Counter[str]]) -> None:
    study, calls = counted
    with snapshot.reading_once(study):
        for _ in range(5):
            assert len(live_trials(study)) == 3  # trials and the abandoned (an attribute)
            STATUS.get(study)
    assert +calls == {"get_all_trials": 1, "get_study_user_attrs": 1}
    live_trials(study)
    STATUS.get(study)
    assert +calls == {"get_all_trials": 2, "get_study_user_attrs": 3}  # outside: every read


def test_a_write_inside_the_block_is_read_back(
        counted: tuple[optuna.Study, Counter[str]]) -> None:
    study, calls = counted
    with snapshot.reading_once(study):
        assert NOISE.get(study) is None
        NOISE.put(study, Noise.from_dict({"cv": 0.05, "floor": 0.05}))
        noise = NOISE.get(study)
        assert noise is not None and noise.floor == 0.05
        STATUS.get(study)
        # before the write, the parts it replaces, after it: no more
        assert calls["get_study_user_attrs"] == 3


def test_a_handed_over_read_serves_the_next_block_only_briefly(
        counted: tuple[optuna.Study, Counter[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    study, calls = counted
    with snapshot.reading_once(study, hand_over=True):
        live_trials(study)
    with snapshot.reading_once(study):  # the trial's start, right after its ask
        live_trials(study)
    assert calls["get_all_trials"] == 1
    with snapshot.reading_once(study):  # nothing handed over any more
        live_trials(study)
    assert calls["get_all_trials"] == 2
    monkeypatch.setattr(snapshot, "HAND_OVER_SECONDS", 0.01)
    with snapshot.reading_once(study, hand_over=True):
        live_trials(study)
    time.sleep(0.05)
    with snapshot.reading_once(study):  # too late: read anew
        live_trials(study)
    assert calls["get_all_trials"] == 4


def test_another_study_is_not_served_from_the_block() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'two.db'}"
        one = optuna.create_study(study_name="one", storage=url)
        two = optuna.create_study(study_name="two", storage=url)
        one.optimize(lambda t: t.suggest_int("x", 0, 9), n_trials=2)
        with snapshot.reading_once(one):
            assert len(live_trials(one)) == 2
            assert live_trials(two) == []
            two.optimize(lambda t: t.suggest_int("x", 0, 9), n_trials=1)
            assert len(live_trials(two)) == 1  # not kept: the block is one's


def test_a_search_trial_reads_the_study_list_a_bounded_number_of_times() -> None:
    """The whole loop on a real study database: each search trial more reads the trial
    list at most 3.5 times (the ask's read, handed to the trial's start; Optuna's own read
    of the waiting trials; the budget check after the trial; now and then the sampler)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from optuna.storages import RDBStorage
    from overhead import loop_seconds  # type: ignore[import-not-found]

    original = RDBStorage._get_trials
    reads: list[int] = []

    def spy(self: RDBStorage, *args: Any, **kwargs: Any) -> Any:
        reads[-1] += 1
        return original(self, *args, **kwargs)

    RDBStorage._get_trials = spy  # type: ignore[method-assign]
    try:
        for trials in (15, 35):
            reads.append(0)
            with tempfile.TemporaryDirectory() as tmp:
                loop_seconds(f"sqlite:///{tmp}/loop.db", trials)
    finally:
        RDBStorage._get_trials = original  # type: ignore[method-assign]
    assert (reads[1] - reads[0]) / 20 <= 3.5


def test_the_best_value_inside_a_block_comes_from_the_kept_trials(
        counted: tuple[optuna.Study, Counter[str]]) -> None:
    study, calls = counted
    best = study.best_value
    with snapshot.reading_once(study):
        live_trials(study)
        assert snapshot.best_value(study) == best
        assert snapshot.best_value(study) == best
    assert calls["get_all_trials"] == 1 and calls["get_best_trial"] == 1  # before the block
    empty = optuna.create_study(direction="maximize")
    with snapshot.reading_once(empty), pytest.raises(ValueError):
        live_trials(empty)
        snapshot.best_value(empty)
