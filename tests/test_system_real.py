"""System knobs on this machine's real files: transparent huge pages and NUMA balancing are
changed for trials of a real study and put back, and a `tuner` SIGKILLed at every point of
a change leaves a journal that the next `tuner` command restores (needs root; the files
are restored by the fixture whatever happens)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests.conftest import PROGRAMS
from tuner.execution.system_journal import CRASH_POINTS
from tuner.execution.system_settings import selected_choice

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
NUMA = Path("/proc/sys/kernel/numa_balancing")
PROBE = str(PROGRAMS / "system_probe.py")

#: Held by each test here for its whole run: the tests change the machine's own files, so
#: only one of them may run at a time, whichever pytest worker (or pytest run) it is in.
MACHINE_LOCK = Path(tempfile.gettempdir()) / "tuner-tests-real-system-files.lock"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(THP, os.W_OK) or not os.access(NUMA, os.W_OK),
    reason="needs root and writable THP / NUMA-balancing files")


@pytest.fixture(autouse=True)
def _one_at_a_time() -> Iterator[None]:
    with MACHINE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(path: Path) -> str:
    return selected_choice(path.read_text())


@pytest.fixture()
def real_files() -> Iterator[dict[str, str]]:
    """The machine's values before the test; written back after it, whatever happened."""
    before = {"thp": read(THP), "numa": read(NUMA)}
    yield before
    for path, value in ((THP, before["thp"]), (NUMA, before["numa"])):
        if read(path) != value:
            path.write_text(value + "\n")


def other_thp(current: str) -> str:
    return "never" if current != "never" else "always"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "TUNER_STATE_DIR": str(tmp_path / "state"),
            "TUNER_LOCK_DIR": str(tmp_path / "locks"), "TUNER_OUTPUT_DIR": str(tmp_path / "out"),
            **extra}


def tuner(tmp_path: Path, *args: str, timeout: float = 300,
          **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout,
                          env=env_for(tmp_path, **extra))


def write_study(tmp_path: Path, knobs: str, *, trials: int, sleep: float = 0.0,
                extra: str = "") -> Path:
    study = tmp_path / "study.yaml"
    study.write_text(f"""
name: system-real
workload:
  command: [{sys.executable}, {PROBE}, --intervals, "2", --touches, "30000",
            --sleep, "{sleep}"]
  runtime: native
  parser: protocol
knobs:
{knobs}
budget: {{n_trials: {trials}}}
noise: {{runs: 2}}
confirm: {{max_rounds: 4}}
{extra}
""")
    return study


def test_a_real_study_changes_thp_and_numa_balancing_per_trial_and_puts_them_back(
        tmp_path: Path, real_files: dict[str, str]) -> None:
    study = write_study(tmp_path, "  thp_enabled: auto\n  numa_balancing: [0, 1]", trials=5,
                        extra="screening: [thp_enabled]")
    done = tuner(tmp_path, "tune", str(study))
    assert done.returncode == 0, done.stdout + done.stderr
    assert read(THP) == real_files["thp"] and read(NUMA) == real_files["numa"]
    assert not (tmp_path / "state" / "system-journal.json").exists()
    stored = optuna.load_study(study_name="system-real", storage=f"sqlite:///{tmp_path}/tuner.db")
    assert stored.user_attrs["system_before"] == {"thp_enabled": real_files["thp"],
                                                  "numa_balancing": real_files["numa"]}
    changed = 0
    for trial in stored.trials:
        seen = trial.user_attrs.get("reported", {}).get("system")
        if seen is None:
            continue
        want_thp = trial.params.get("thp_enabled", real_files["thp"])
        want_numa = trial.params.get("numa_balancing", real_files["numa"])
        assert (seen["thp_enabled"], seen["numa_balancing"]) == (want_thp, want_numa), \
            trial.number
        changed += want_thp != real_files["thp"] or want_numa != real_files["numa"]
    assert changed >= 1  # some trial ran with the machine changed, and saw it
    report = done.stdout
    assert (f"System settings before the study (put back after every trial): "
            f"thp_enabled={real_files['thp']}, numa_balancing={real_files['numa']}") in report
    # each system knob's effect, measured with an interval against the machine as it was
    assert f"vs {real_files['thp']} (as the machine has it): " in report
    assert "Screening thp_enabled: thp_enabled=" in report and "x [" in report
    best = (tmp_path / "out" / "system-real" / "best.sh").read_text()
    assert best.startswith("#!/bin/sh\n")
    # the API and the dashboard say what the machine had before the study
    from fastapi.testclient import TestClient

    from tuner.service.app import create_app
    from tuner.settings import Settings

    app = create_app(settings=Settings(), storage_url=f"sqlite:///{tmp_path}/tuner.db")
    with TestClient(app) as client:
        body = client.get("/studies/system-real").json()
        assert body["system_before"] == stored.user_attrs["system_before"]
        page = client.get("/ui/studies/system-real").text
        assert 'id="system-before"' in page
        assert f"<strong>thp_enabled</strong> = {real_files['thp']}" in page


def test_the_study_file_and_the_host_policy_limit_system_knobs(
        tmp_path: Path, real_files: dict[str, str]) -> None:
    study = write_study(tmp_path, "  thp_enabled: [always, never]\n  numa_balancing: [0, 1]",
                        trials=3, extra="system: {allow: [thp_enabled]}")
    refused = tuner(tmp_path, "validate", str(study))
    assert refused.returncode == 2
    assert "study.yaml:10: knobs.numa_balancing: a system knob this study does not allow: " \
           "system.allow lists thp_enabled" in refused.stderr, refused.stderr
    study = write_study(tmp_path, "  thp_enabled: [always, never]", trials=3)
    policy = tuner(tmp_path, "validate", str(study), TUNER_SYSTEM_KNOBS="numa_balancing")
    assert policy.returncode == 2
    assert "knobs.thp_enabled: cannot be applied here: this host does not allow it " \
           "(TUNER_SYSTEM_KNOBS='numa_balancing'" in policy.stderr, policy.stderr


def wait_for(path: Path, value: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while read(path) != value:
        assert time.monotonic() < deadline, f"{path} never became {value}"
        time.sleep(0.05)


@pytest.mark.parametrize("point", [*CRASH_POINTS, "during_run"])
def test_a_tuner_killed_at_any_point_is_restored_by_the_next_start(
        tmp_path: Path, real_files: dict[str, str], point: str) -> None:
    """SIGKILL before the journal, between the journal and the writes, after the writes,
    during the trial's run and in the middle of the restore: the next `tuner` command (here
    `tuner list`) puts both files back, saying so; 100% of the points."""
    new_thp = other_thp(real_files["thp"])
    new_numa = "1" if real_files["numa"] == "0" else "0"
    study = write_study(tmp_path, f"  thp_enabled: {new_thp}\n  numa_balancing: {new_numa}",
                        trials=1, sleep=30 if point == "during_run" else 0)
    command = [sys.executable, "-m", "tuner.cli", "tune", str(study), "--quiet"]
    if point == "during_run":
        proc = subprocess.Popen(command, cwd=tmp_path, env=env_for(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(THP, new_thp)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    else:
        killed = subprocess.run(command, cwd=tmp_path, env=env_for(
            tmp_path, TUNER_TEST_CRASH_AT=point), capture_output=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = tmp_path / "state" / "system-journal.json"
    if point == "before_journal":
        assert not journal.exists()  # nothing was written, nothing changed
        assert (read(THP), read(NUMA)) == (real_files["thp"], real_files["numa"])
    else:
        entries = json.loads(journal.read_text())["entries"]
        assert {e["old"] for e in entries} == {real_files["thp"], real_files["numa"]}
    if point in ("after_change", "during_run"):
        assert (read(THP), read(NUMA)) == (new_thp, new_numa)  # left changed by the kill
    after = tuner(tmp_path, "list", "--storage", f"sqlite:///{tmp_path}/tuner.db")
    assert after.returncode == 0, after.stderr
    assert (read(THP), read(NUMA)) == (real_files["thp"], real_files["numa"])
    assert not journal.exists()
    if point != "before_journal":
        assert "restored 2 system setting(s) left changed by tuner pid" in after.stderr
    again = tuner(tmp_path, "restore")
    assert again.returncode == 0 and "nothing to restore" in again.stdout


def test_a_service_worker_changes_and_restores_them_too(
        tmp_path: Path, real_files: dict[str, str]) -> None:
    from tuner.service.api.routes.studies import queue
    from tuner.spec import load_file

    other = other_thp(real_files["thp"])
    # two search trials visit both values (the baselines' params are the sampler's view)
    study = write_study(tmp_path, f"  thp_enabled: [{real_files['thp']}, {other}]", trials=4,
                        extra="screening: off")
    loaded = load_file(str(study))
    url = f"sqlite:///{tmp_path}/service.db"
    queue(optuna.storages.RDBStorage(url), loaded.studies[0], loaded.text)
    done = tuner(tmp_path, "worker", "--storage", url, "--once")
    assert done.returncode == 0, done.stderr
    assert read(THP) == real_files["thp"]
    trials = optuna.load_study(study_name="system-real", storage=url).trials
    seen = {t.params.get("thp_enabled"): t.user_attrs["reported"]["system"]["thp_enabled"]
            for t in trials if "reported" in t.user_attrs and t.params}
    assert seen.get(other) == other, seen


@pytest.mark.slow
def test_a_built_in_study_tunes_thp_with_the_thread_knobs(
        tmp_path: Path, real_files: dict[str, str]) -> None:
    """ResNet-50 (small preset) with intra_op, inter_op and thp_enabled: the report gives
    THP's effect with an interval, and the file is as it was afterwards (about 4 min)."""
    study = tmp_path / "resnet.yaml"
    study.write_text("""
name: resnet-thp
workload: {builtin: resnet, params: {preset: small, mode: infer, seconds: 3}}
knobs:
  intra_op: [1, 2]
  inter_op: [1, 2]
  thp_enabled: [always, madvise, never]
budget: {n_trials: 6}
noise: {runs: 3}
confirm: {top: 1, rounds: 4, max_rounds: 4}
""")
    done = tuner(tmp_path, "tune", str(study), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read(THP) == real_files["thp"]
    report = done.stdout
    line = next(x for x in report.splitlines() if x.startswith("Screening thp_enabled: "))
    assert f"vs {real_files['thp']} (as the machine has it): " in line and "x [" in line
    assert "System settings before the study (put back after every trial): " \
           f"thp_enabled={real_files['thp']}" in report


def test_doctor_lists_the_system_knobs_with_what_this_machine_allows(tmp_path: Path) -> None:
    done = tuner(tmp_path, "doctor")
    assert done.returncode == 0, done.stderr
    section = done.stdout.split("system knobs (", 1)[1].splitlines()[1:]
    rows = {line.split()[0]: line for line in section if line.startswith("  ")}
    for name in ("thp_enabled", "thp_defrag", "numa_balancing", "swappiness",
                 "sched_autogroup"):
        assert rows[name].rstrip().endswith("writable"), rows[name]
    assert f"  thp_enabled                  {read(THP)} " in rows["thp_enabled"] + " "
    cpu = Path("/sys/devices/system/cpu")
    if not Path("/dev/cpu/0/msr").exists():
        assert "unavailable: " in rows["prefetch_l2_stream"]
        assert "msr" in rows["prefetch_l2_stream"] or "CPU model" in rows["prefetch_l2_stream"]
    if not (cpu / "cpufreq/policy0").exists():
        for name in ("cpu_governor", "cpu_min_freq", "cpu_max_freq", "energy_perf_preference"):
            assert "unavailable: no cpufreq driver" in rows[name], rows[name]
    if not (cpu / "intel_uncore_frequency").exists():
        for name in ("uncore_min_freq", "uncore_max_freq"):
            assert "unavailable: " in rows[name] and "uncore" in rows[name], rows[name]
    assert set(rows) >= {"smt", "idle_state_limit", "turbo", "sched_base_slice_ns"}
