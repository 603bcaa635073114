"""The ask-run-tell loop on real subprocesses (the fast fake workload) and a SQLite study."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import FAKE_WORKLOAD, PYTHON
from tuner.errors import StudyConflictError
from tuner.host import Host, fingerprint
from tuner.results.summary import summarize
from tuner.settings import get_settings
from tuner.space import fit_to
from tuner.space.search_space import build_space
from tuner.spec import load_file
from tuner.store import records
from tuner.study.run import Collaborators, RunLimits, RunResult, StudyRun, StudyTarget
from tuner.study.trial import known_to_the_margin
from tuner.testing.specs import study_yaml
from tuner.testing.studies import run_study_file


def fake_workload(*, intervals: str = "2", env: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """The fake workload as a command (``--intervals`` per run, ``env`` for its noise)."""
    workload: dict[str, Any] = {"command": [PYTHON, FAKE_WORKLOAD, "--intervals", intervals],
                                "parser": "protocol", "timeout": 20, "runtime": "tensorflow"}
    if env:
        workload["env"] = env
    return workload


def fake_knobs(*, threads_high: int = 6, blocktime: bool = True,
               **more: Any) -> dict[str, Any]:
    knobs: dict[str, Any] = {"threads": {"flag": "--threads", "low": 1, "high": threads_high}}
    if blocktime:
        knobs["KMP_BLOCKTIME"] = [0, 1, 200]
    return {**knobs, **more}


def fake_study(**overrides: Any) -> str:
    """The study file of the fake workload, with top-level keys replaced (``study_yaml``)."""
    return study_yaml(**{"name": "fake", "workload": fake_workload(), "knobs": fake_knobs(),
                         "budget": {"n_trials": 12}, "sampler": {"name": "tpe", "seed": 3},
                         "noise": {"runs": 3}, "confirm": {"top": 2, "rounds": 3,
                                                  "max_rounds": 3},
                         **overrides})


STUDY = fake_study()


def run_study(path: Path, host: Host, storage: str, *,
              limits: RunLimits | None = None) -> RunResult:
    return run_study_file(path, host, storage, limits=limits)


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_study_runs_baselines_first_and_finds_the_optimum(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    result = run_study(write_study(STUDY), local_host, storage)
    trials = result.study.get_trials()
    assert len(trials) == 12
    assert [t.user_attrs["role"] for t in trials[:2]] == ["defaults", "vendor"]
    assert all(t.user_attrs["role"] == "search" for t in trials[2:])
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # the defaults baseline applied nothing: no flag, no variable, no binding
    defaults = trials[0].user_attrs
    launch = records.get(defaults, "launch")
    assert launch["prefix"] == [] and launch["env"] == {}
    assert records.get(defaults, "reported")["argv"] == ["--intervals", "2"]
    # the vendor baseline set KMP_BLOCKTIME=1 and TensorFlow's pools through the environment
    assert records.get(trials[1].user_attrs, "reported")["env"]["KMP_BLOCKTIME"] == "1"
    summary = summarize(result.study)
    assert summary.confirmed and summary.best is not None
    # the optimum is threads=3 (1000 with KMP_BLOCKTIME=1, 975 without)
    assert summary.best.applied["threads"] == 3
    assert summary.best_interval is not None and summary.best_interval["mean"] > 970
    speedup = summary.speedups["defaults"]
    assert speedup["low"] <= speedup["ratio"] <= speedup["high"]
    assert speedup["ratio"] > 1.0 and speedup["verdict"] == "win"
    attrs = result.study.user_attrs
    assert records.get(attrs, "fingerprint")["host_class"] == attrs["host_class"]
    assert records.get(attrs, "space")["size"] == 6 * 3
    assert "threads" in records.get(attrs, "spec_text")
    noise = records.get(attrs, "noise")
    assert len(noise["samples"]) == 3 and noise["trial"] == 0


def test_a_value_is_known_to_two_percent_at_two_noise_floors_over_root_runs() -> None:
    assert known_to_the_margin([1.0], 0.01)
    assert not known_to_the_margin([1.0], 0.011)
    assert known_to_the_margin([1.0, 1.0], 0.014)
    assert not known_to_the_margin([1.0, 1.0, 1.0], 0.018)
    assert not known_to_the_margin([], 0.0)


@pytest.mark.parametrize(("noise", "contender_runs"), [("0.03", 3), ("0", 1)])
def test_repeats_adapt_and_bad_trials_are_pruned(
        write_study: Callable[[str], Path], local_host: Host, storage: str, tmp_path: Path,
        noise: str, contender_runs: int) -> None:
    """At 3% run noise a contender gets as many runs as allowed; on a machine that does not
    vary (noise floor under 1%) one run already measures it to within the 2% a confirmation
    calls the same, and no candidate gets more."""
    env = {"FAKE_NOISE": noise, "FAKE_SEED": "5", "FAKE_COUNTER": str(tmp_path / "runs")}
    text = fake_study(budget={"n_trials": 14}, repeats={"min": 1, "max": 3}, screening="off",
                      confirm={"top": 0}, workload=fake_workload(intervals="4", env=env))
    result = run_study(write_study(text), local_host, storage)
    trials = result.study.get_trials()
    assert len(records.get(trials[0].user_attrs, "samples")) == 3  # noise runs
    # the vendor: repeats.max, or one run where that measures it to within 2%
    assert len(records.get(trials[1].user_attrs, "samples")) == contender_runs
    best = result.study.best_value
    contenders = 0
    for trial in trials[2:]:
        samples = records.get(trial.user_attrs, "samples")
        if "duplicate_of" in trial.user_attrs:
            assert samples == []  # answered by the earlier trial of the same configuration
        elif trial.state == TrialState.PRUNED:
            reason = records.get(trial.user_attrs, "reason")
            assert samples == [] and "stopped early at interval" in reason
            assert len(trial.intermediate_values) >= 2
        elif trial.value is not None and trial.value < 0.9 * best:
            assert len(samples) == 1  # clearly worse: no more runs
        elif trial.value is not None and trial.value > 0.999 * best:
            assert len(samples) == contender_runs  # a contender
            contenders += 1
    assert contenders and any(t.state == TrialState.PRUNED for t in trials)


def test_screening_fixes_inert_knobs_and_keeps_the_others(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    noop = {"env": "FAKE_UNUSED", "choices": ["a", "b"]}
    text = fake_study(knobs=fake_knobs(noop=noop), screening=["KMP_BLOCKTIME", "noop"],
                      confirm={"top": 0})
    result = run_study(write_study(text), local_host, storage)
    screening = records.get(result.study.user_attrs, "screening")
    assert screening["noop"]["inert"] and "inert, fixed at unset" in screening["noop"]["evidence"]
    assert not screening["KMP_BLOCKTIME"]["inert"]
    assert "KMP_BLOCKTIME=1 vs unset" in screening["KMP_BLOCKTIME"]["evidence"]
    assert "it matters" in screening["KMP_BLOCKTIME"]["evidence"]
    search = [t for t in result.study.get_trials() if t.user_attrs["role"] == "search"]
    assert search and all("noop" not in t.params for t in search)
    assert all(records.get(t.user_attrs, "applied")["noop"] == "unset" for t in search)
    assert "KMP_BLOCKTIME" in search[-1].params


def test_noise_is_never_reported_as_a_win(write_study: Callable[[str], Path], local_host: Host,
                                          storage: str, tmp_path: Path) -> None:
    text = f"""
name: only-noise
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --threads, "3", --intervals, "2"]
  parser: protocol
  env: {{FAKE_NOISE: "0.06", FAKE_SEED: "11", FAKE_COUNTER: "{tmp_path / 'runs'}"}}
knobs:
  noop: {{env: FAKE_UNUSED, choices: [a, b, c, d]}}
budget: {{n_trials: 6}}
screening: off
noise: {{runs: 4}}
confirm: {{top: 2, rounds: 4, max_rounds: 4}}
"""
    result = run_study(write_study(text), local_host, storage)
    noise = records.get(result.study.user_attrs, "noise")
    assert 0.01 < noise["run_cv"] < 0.25
    summary = summarize(result.study)
    assert summary.confirmed
    for entry in summary.confirmation["entries"]:
        for speedup in entry["speedups"].values():
            # too close to tell: no difference, or inconclusive when the rounds ran out
            assert speedup["verdict"] in ("no measurable difference", "inconclusive"), entry
    from tuner.results.render import render
    assert "No configuration measurably beat the baselines" in render(summary)


@pytest.mark.slow  # 15 s: a second whole study
def test_a_second_seed_confirms_within_the_first_runs_interval(
        write_study: Callable[[str], Path], local_host: Host, tmp_path: Path) -> None:
    picks = []
    for seed in (1, 2):
        # 2% noise, seeded (each study its own draws): the same on every run of the suite,
        # where unseeded draws would miss the interval now and then by chance alone
        noise = {"FAKE_NOISE": "0.02", "FAKE_SEED": str(seed),
                 "FAKE_COUNTER": str(tmp_path / "runs")}
        text = fake_study(name=f"s{seed}", sampler={"name": "tpe", "seed": seed},
                          workload=fake_workload(env=noise))
        result = run_study(write_study(text), local_host, f"sqlite:///{tmp_path / 'r.db'}")
        summary = summarize(result.study)
        assert summary.best_interval is not None
        picks.append(summary.best_interval)
    first, second = picks
    assert first["low"] <= second["mean"] <= first["high"]


def test_failures_are_recorded_and_the_study_goes_on(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    text = f"""
name: failing
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}]
  parser: protocol
  timeout: 3
knobs:
  behaviour: {{flag: --behaviour, choices: [ok, crash, hang, garbage]}}
budget: {{n_trials: 7}}
sampler: {{name: grid}}
noise: {{runs: 2}}
confirm: {{top: 0}}
"""
    result = run_study(write_study(text), local_host, storage)
    trials = result.study.get_trials()
    assert len(trials) == 7
    by_behaviour = {t.params["behaviour"]: t for t in trials if t.user_attrs["role"] == "search"}
    assert set(by_behaviour) == {"ok", "crash", "hang", "garbage", "unset"}
    crash, hang, garbage = by_behaviour["crash"], by_behaviour["hang"], by_behaviour["garbage"]
    assert crash.state == TrialState.FAIL
    assert records.get(crash.user_attrs, "reason") == "exited with status 1"
    assert "ZeroDivisionError" in records.get(crash.user_attrs, "runs")[0]["tail"]
    assert hang.state == TrialState.FAIL and "timeout" in records.get(hang.user_attrs, "reason")
    assert "hanging now" in records.get(hang.user_attrs, "runs")[0]["tail"]
    assert garbage.state == TrialState.FAIL
    assert "no 'throughput'" in records.get(garbage.user_attrs, "reason")
    assert by_behaviour["ok"].state == TrialState.COMPLETE
    summary = summarize(result.study)
    assert summary.best is not None
    assert {f.number for f in summary.failures} == {crash.number, hang.number, garbage.number}


def test_fixed_repeats_store_samples_and_use_the_median(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    text = fake_study(budget={"n_trials": 3}, repeats=3, pruner="none")
    result = run_study(write_study(text), local_host, storage)
    for trial in result.study.get_trials()[1:]:
        samples = records.get(trial.user_attrs, "samples")
        assert len(samples) == 3 and len(records.get(trial.user_attrs, "runs")) == 3
        assert trial.value == sorted(samples)[1]


def test_resume_keeps_the_budget(write_study: Callable[[str], Path], local_host: Host,
                                 storage: str) -> None:
    path = write_study(fake_study(budget={"n_trials": 5}))
    first = run_study(path, local_host, storage, limits=RunLimits(max_trials=3))
    assert len(first.study.get_trials()) == 3
    second = run_study(path, local_host, storage)
    assert second.ran == 2 and len(second.study.get_trials()) == 5
    third = run_study(path, local_host, storage)
    assert third.ran == 0


def test_changed_space_or_machine_refuses_to_resume(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    run_study(write_study(fake_study(budget={"n_trials": 2})), local_host, storage)
    changed = write_study(fake_study(knobs=fake_knobs(threads_high=8)))
    with pytest.raises(StudyConflictError, match="different workload, objective or knob space"):
        run_study(changed, local_host, storage)
    loaded = load_file(write_study(STUDY), fit=fit_to(local_host))
    space = build_space(loaded.studies[0], local_host)
    other = replace(fingerprint(local_host, cache_dir=get_settings().cache_dir),
                    cpu_model="Some Other CPU")
    with pytest.raises(StudyConflictError, match="another kind of machine"):
        StudyRun(StudyTarget(space=space, storage_url=storage, fingerprint=other),
                 collaborators=Collaborators(settings=get_settings())).run()


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_resume_after_sigkill_mid_trial(write_study: Callable[[str], Path], tmp_path: Path,
                                        storage: str) -> None:
    text = f"""
name: killed
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --sleep, "1.5", --intervals, "1"]
  parser: protocol
knobs:
  threads: {{flag: --threads, low: 1, high: 4}}
budget: {{n_trials: 4}}
noise: {{runs: 2}}
confirm: {{top: 0}}
"""
    path = write_study(text)
    cmd = [sys.executable, "-m", "tuner.cli", "tune", str(path), "--storage", storage, "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def running_trial() -> bool:
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
        except KeyError:
            return False
        trials = study.get_trials(states=(TrialState.RUNNING,))
        return any(t.number >= 1 for t in trials)

    _wait_for(running_trial, 60)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # the workload died with its tuner (PR_SET_PDEATHSIG): nothing keeps measuring
    def workload_gone() -> bool:
        found = subprocess.run(["pgrep", "-af", "fake_workload.py --sleep 1.5"],
                               capture_output=True, text=True).stdout.strip()
        print("still there:", found)
        return not found

    _wait_for(workload_gone, 10)
    study = optuna.load_study(study_name="killed", storage=storage)
    assert [t for t in study.get_trials() if t.state == TrialState.RUNNING]

    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "recovered trials" in rerun.stderr
    study = optuna.load_study(study_name="killed", storage=storage)
    trials = study.get_trials()
    marks = {k: v for k, v in study.user_attrs.items() if k.startswith("abandoned:")}
    assert len(marks) == 1 and "died mid-trial" in next(iter(marks.values()))
    abandoned = [t for t in trials if f"abandoned:{t.number}" in marks]
    assert len(abandoned) == 1 and abandoned[0].state == TrialState.FAIL
    counted = [t for t in trials if t not in abandoned]
    assert len(counted) == 4 and all(t.state == TrialState.COMPLETE for t in counted)
    retried = [t for t in counted if t.system_attrs.get("failed_trial") == abandoned[0].number]
    assert len(retried) == 1 and retried[0].params == abandoned[0].params


def test_a_configuration_already_measured_is_not_measured_again(
        write_study: Callable[[str], Path], local_host: Host, storage: str) -> None:
    text = fake_study(knobs=fake_knobs(threads_high=2, blocktime=False),
                      budget={"n_trials": 9}, sampler={"name": "random", "seed": 1},
                      confirm={"top": 0})
    result = run_study(write_study(text), local_host, storage)
    trials = result.study.get_trials()
    twins = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert twins, "9 trials over 3 configurations must repeat some"
    for twin in twins:
        first = trials[twin.user_attrs["duplicate_of"]]
        assert records.get(first.user_attrs, "applied") == records.get(twin.user_attrs, "applied")
        assert records.get(twin.user_attrs, "samples") == [] and "runs" not in twin.user_attrs
        assert twin.state == first.state and twin.value == first.value


def test_screening_adds_rounds_only_while_undecided(
        write_study: Callable[[str], Path], local_host: Host, storage: str,
        tmp_path: Path) -> None:
    text = f"""
name: noisy-screen
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --threads, "3", --intervals, "2"]
  parser: protocol
  env: {{FAKE_NOISE: "0.03", FAKE_SEED: "5", FAKE_COUNTER: "{tmp_path / 'runs'}"}}
knobs:
  noop: {{env: FAKE_UNUSED, choices: [a, b]}}
  threads: {{flag: --threads, low: 1, high: 3}}
budget: {{n_trials: 3}}
screening: [noop, threads]
noise: {{runs: 3}}
confirm: {{top: 0}}
"""
    result = run_study(write_study(text), local_host, storage)
    screening = records.get(result.study.user_attrs, "screening")
    # threads=1 costs 16%: clear after the first 4 rounds, its probes then sit out
    assert "it matters" in screening["threads"]["evidence"]
    assert screening["threads"]["rounds"] == screening["noop"]["rounds"]
    probe = screening["threads"]["speedups"]["1"]
    assert probe["rounds"] == 4
    # noop does nothing, but 3% noise needs more than 4 rounds to show it inside +/-5%
    assert screening["noop"]["rounds"] > 4
    assert screening["noop"]["inert"] or screening["noop"]["rounds"] == 10
