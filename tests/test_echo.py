"""Proof that a value arrived (``workload.echo``): the program's read-back of its settings is
compared with what the trial asked for, on real subprocesses (``programs/capped_threads.py``
runs with at most ``--cap`` threads and says how many it uses)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from tests.conftest import PROGRAMS, PYTHON
from tuner.errors import SpecError
from tuner.execution import RunRequest, Status
from tuner.execution.echo import EchoReader, matches, mismatches
from tuner.host import Host
from tuner.results.render import render
from tuner.results.summary import summarize
from tuner.spec import parse_text
from tuner.store import records
from tuner.study.run import RunResult
from tuner.testing import PROCESS_MODES, BackendSupplier, replay_launch
from tuner.testing.specs import study_yaml
from tuner.testing.studies import run_study_file

CAPPED = str(PROGRAMS / "capped_threads.py")
PATTERN = r"Number of threads: (?P<threads>\d+)"


def capped_study(*args: str, threads: Any = 4, **overrides: Any) -> str:
    """A study of the capped program (``args`` after its path) reading ``threads`` back."""
    workload = {"command": [PYTHON, CAPPED, *args], "parser": "protocol", "timeout": 20,
                "echo": PATTERN}
    fields: dict[str, Any] = {
        "name": "echo", "workload": workload,
        "knobs": {"threads": {"flag": "--threads", "value": threads}},
        "baselines": ["defaults"], "budget": {"n_trials": 1}, "noise": {"runs": 2},
        "repeats": 1, "confirm": {"top": 0}, "screening": "off", **overrides}
    return study_yaml(**fields)


def run_study(path: Path, host: Host, storage: str) -> RunResult:
    return run_study_file(path, host, storage)


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


# --- reading and comparing -------------------------------------------------------------------


def test_the_first_value_of_each_group_wins_and_every_match_in_a_line_counts() -> None:
    reader = EchoReader(r"threads=(?P<threads>\d+)|batch=(?P<batch>\d+)")
    reader.feed("starting: threads=4 batch=32")
    reader.feed("threads=8 (a pool of some other library)")
    assert reader.values == {"threads": "4", "batch": "32"}
    quiet = EchoReader(PATTERN)
    quiet.feed("nothing here")
    assert quiet.values == {}


@pytest.mark.parametrize(("asked", "reported", "same"), [
    (4, " 4 ", True), (4, "04", True), (4, "2", False), (4, "four", False),
    (True, "1", True), (True, "TRUE", True), (True, "0", False), (False, "false", True),
    (0.5, "0.50", True), (0.5, "0.6", False),
    ("granularity=fine,compact", "granularity=fine,compact ", True), ("a", "A", False)])
def test_values_are_compared_as_their_kind(asked: Any, reported: str, same: bool) -> None:
    assert matches(asked, reported) is same


def test_each_instance_is_checked_and_a_missing_value_only_where_asked() -> None:
    wrong = mismatches(PATTERN, {"threads": 4}, [{"threads": "4"}, {"threads": "2"}])
    assert wrong == [f"instance 1: threads: asked for 4, the program reported 2 "
                     f"(echo pattern '{PATTERN}')"]
    assert mismatches(PATTERN, {"threads": 4}, [{}], missing=False) == []
    assert "never printed" in mismatches(PATTERN, {"threads": 4}, [{}])[0]


# --- trials on real programs -----------------------------------------------------------------


def test_a_value_that_arrived_completes_the_trial_and_is_stored(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    result = run_study(write_study(capped_study()), local_host, storage)
    (trial,) = result.study.get_trials()
    assert trial.state == TrialState.COMPLETE
    assert records.get(trial.user_attrs, "echoed") == {"threads": "4"}


def test_a_value_the_program_changed_fails_the_trial_with_both_values(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    # the program caps its pool at 2: 4 threads never ran, 1 thread did
    text = capped_study("--cap", "2", threads=None, knobs={
        "threads": {"flag": "--threads", "choices": [1, 4]}},
        budget={"n_trials": 4}, sampler={"name": "grid"})
    result = run_study(write_study(text), local_host, storage)
    by_threads = {records.get(t.user_attrs, "applied").get("threads"): t
                  for t in result.study.get_trials()[1:]}
    failed = by_threads[4]
    reason = records.get(failed.user_attrs, "reason")
    assert failed.state == TrialState.FAIL
    assert reason == f"threads: asked for 4, the program reported 2 (echo pattern '{PATTERN}')"
    assert records.get(failed.user_attrs, "echoed") == {"threads": "2"}
    assert records.get(failed.user_attrs, "runs")[0]["status"] == "failed"
    assert by_threads[1].state == TrialState.COMPLETE
    # the best is never the configuration that did not run, and the report says why it failed
    summary = summarize(result.study)
    assert summary.best is not None and summary.best.applied.get("threads") != 4
    assert reason in render(summary)


def test_a_value_the_program_never_printed_fails_the_trial(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    result = run_study(write_study(capped_study("--quiet")), local_host, storage)
    (trial,) = result.study.get_trials()
    assert trial.state == TrialState.FAIL
    assert records.get(trial.user_attrs, "reason") == (
        f"threads: asked for 4, the program never printed it (echo pattern '{PATTERN}' "
        f"matched no 'threads' group in its output)")


def test_a_knob_left_unset_asks_for_nothing(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    result = run_study(write_study(capped_study("--quiet", threads="unset")), local_host,
                       storage)
    (trial,) = result.study.get_trials()
    assert trial.state == TrialState.COMPLETE


# --- validation ------------------------------------------------------------------------------


def test_an_echo_group_must_name_a_knob_of_the_study() -> None:
    text = capped_study(workload={"command": [PYTHON, CAPPED], "parser": "protocol",
                                  "echo": r"threads: (?P<thread>\d+)"})
    with pytest.raises(SpecError) as error:
        parse_text(text, "study.yaml")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.lstrip()
                .startswith("echo:"))
    assert str(error.value) == (
        f"study.yaml:{line}: workload.echo: group 'thread' names no knob of this study; each "
        f"named group reads back one knob's value (knobs here: threads)")


def test_echo_belongs_to_command_workloads() -> None:
    text = study_yaml(workload={"builtin": "resnet", "echo": PATTERN},
                      knobs={"threads": {"flag": "--threads", "value": 4}})
    with pytest.raises(SpecError, match=r"study.yaml:\d+: workload.echo: echo belongs to "
                                        r"command workloads"):
        parse_text(text, "study.yaml")


# --- every backend that runs programs carries the pattern ------------------------------------


@pytest.mark.parametrize("mode", PROCESS_MODES)
def test_every_backend_reads_back(mode: str) -> None:
    supplier = BackendSupplier(mode)
    with supplier as backend:
        # workloads.replay is forkable: the fork mode really forks it
        request = RunRequest(launch=replay_launch(supplier.surface_file, time_scale=0.0),
                             metric="throughput", timeout=20.0,
                             base_env={"PATH": os.environ["PATH"]},
                             echo=r'"workload": "(?P<workload>\w+)"')
        outcome = backend.run(request, None)
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.echoed == [{"workload": "replay"}]
