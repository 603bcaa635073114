"""Attribute values that fit optuna-dashboard: large ones in parts, read back whole."""

from __future__ import annotations

import json
from typing import Any

import optuna

from tuner.store import records


def test_small_values_are_stored_as_they_are() -> None:
    attrs: dict[str, Any] = {}
    records.put(attrs.__setitem__, "samples", [1.5, 2.5])
    records.put(attrs.__setitem__, "shell", "env A=1 prog")
    assert attrs == {"samples": [1.5, 2.5], "shell": "env A=1 prog"}
    assert records.get(attrs, "samples") == [1.5, 2.5] and records.get(attrs, "nope", 7) == 7


def test_large_values_go_in_parts_under_the_limit_and_read_back_whole() -> None:
    attrs: dict[str, Any] = {}
    runs = [{"tail": ["x" * 300] * 5, "seconds": 1.0}] * 4
    text = "line\n" * 1000
    records.put(attrs.__setitem__, "runs", runs)
    records.put(attrs.__setitem__, "spec_text", text)
    assert records.get(attrs, "runs") == runs and records.get(attrs, "spec_text") == text
    assert all(len(records.shown(v)) <= 1024 for v in attrs.values())
    assert attrs["runs"][records.MARK] == len([k for k in attrs if k.startswith("runs~")])
    assert all(records.is_part(k) for k in attrs if "~" in k)


def test_a_rewrite_never_mixes_the_parts_of_two_writes() -> None:
    attrs: dict[str, Any] = {}
    records.put(attrs.__setitem__, "confirmation", {"entries": ["a" * 3000]})
    old_marker = attrs["confirmation"]
    records.put(attrs.__setitem__, "confirmation", {"entries": ["b" * 2500]}, attrs)
    assert attrs["confirmation"]["id"] == old_marker["id"] + 1
    # a reader that still holds the old marker reads the old parts, intact
    assert records.get({**attrs, "confirmation": old_marker}, "confirmation") == {
        "entries": ["a" * 3000]}
    assert records.get(attrs, "confirmation") == {"entries": ["b" * 2500]}


def test_parts_in_a_real_study_and_a_missing_part_reads_as_absent() -> None:
    study = optuna.create_study()
    value = {"blob": "z" * 2500}
    records.put(study.set_user_attr, "blob", value)
    assert records.get(study.user_attrs, "blob") == value
    assert all(len(records.shown(v)) <= 1024 for v in study.user_attrs.values())
    broken = {k: v for k, v in study.user_attrs.items() if not k.endswith(".2")}
    assert records.get(broken, "blob", "absent") == "absent"
    assert json.loads(json.dumps(study.user_attrs["blob"]))[records.MARK] == 3


def test_every_trial_uses_the_same_part_keys() -> None:
    """optuna-dashboard makes a column of each attribute key: first writes share them."""
    one: dict[str, Any] = {}
    two: dict[str, Any] = {}
    records.put(one.__setitem__, "runs", [{"tail": "a" * 1500}])
    records.put(two.__setitem__, "runs", [{"tail": "b" * 1800}])
    assert set(one) == set(two) == {"runs", "runs~1.1", "runs~1.2"}
