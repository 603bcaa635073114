"""The `tuner` command, run as a real process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import (
    FAKE_WORKLOAD,
    PYTHON,
    final_throughput,
    reported_settings,
    rewrite_attrs,
)

FIXTURES = Path(__file__).parent / "fixtures" / "studies"


def tuner(*args: str, cwd: Path | None = None, check: bool = False,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_validate_good_and_bad() -> None:
    good = tuner("validate", "--no-host", *map(str, sorted((FIXTURES / "good").glob("*.yaml"))))
    assert good.returncode == 0, good.stderr
    assert "study resnet-threads is valid" in good.stdout
    bad = tuner("validate", str(FIXTURES / "bad" / "unknown_knob.yaml"))
    assert bad.returncode == 2
    assert "unknown_knob.yaml:5: knobs.intra_ops: unknown knob 'intra_ops'" in bad.stderr
    assert "did you mean 'intra_op'" in bad.stderr


def test_validate_against_this_host_reports_the_space() -> None:
    root = Path(__file__).resolve().parent.parent
    out = tuner("validate", str(root / "studies.yaml"), check=True)
    assert "configurations" in out.stdout


def test_doctor_lists_topology_and_knobs() -> None:
    out = tuner("doctor", check=True).stdout
    assert "physical cores" in out and "fingerprint:" in out and "host_class=" in out
    assert "membind" in out and "intra_op" in out


@pytest.fixture(scope="module")
def tuned_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real ``tuner tune`` for the module (its report checked here); each test gets a
    copy of its database and output (``finished_study``), free to change or delete it."""
    tmp_path = tmp_path_factory.mktemp("tuned")
    storage = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "study.yaml"
    path.write_text(f"""
name: cli-fake
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --intervals, "2"]
  parser: protocol
knobs:
  threads: {{flag: --threads, low: 1, high: 5}}
  KMP_BLOCKTIME: [0, 1]
budget: {{n_trials: 10}}
sampler: {{name: tpe, seed: 2}}
noise: {{runs: 3}}
confirm: {{top: 2, rounds: 3, max_rounds: 3}}
storage: {storage}
""")
    out = tuner("tune", str(path), "--output", str(tmp_path / "out"), cwd=tmp_path, check=True)
    assert "confirmed over 3 interleaved rounds — trial" in out.stdout
    assert "Noise floor: runs of the defaults vary by" in out.stdout
    assert "Screening KMP_BLOCKTIME: KMP_BLOCKTIME=0 vs unset" in out.stdout
    assert "Knob importance (PED-ANOVA): threads" in out.stdout
    assert "Speedup over framework defaults" in out.stdout
    assert "Explored" in out.stdout and "of 15 configurations" in out.stdout
    assert f"Settings written to {tmp_path / 'out' / 'cli-fake'}" in out.stdout
    assert "10/10 trials" in out.stderr  # progress
    return tmp_path


@pytest.fixture
def finished_study(tuned_study: Path, tmp_path: Path) -> tuple[Path, str]:
    shutil.copy(tuned_study / "cli.db", tmp_path / "cli.db")
    shutil.copytree(tuned_study / "out", tmp_path / "out")
    return tuned_study / "study.yaml", f"sqlite:///{tmp_path / 'cli.db'}"


def test_best_formats(finished_study: tuple[Path, str], tmp_path: Path) -> None:
    path, storage = finished_study
    data = json.loads(tuner("best", "cli-fake", "--storage", storage, "--format", "json",
                            check=True).stdout)
    assert data["study"] == "cli-fake" and data["value"] > 900
    assert set(data["speedups"]) == {"defaults", "vendor"} and data["confirmed"]
    env = tuner("best", "cli-fake", "-f", str(path), "--format", "env", check=True).stdout
    assert all(line.startswith(("export ", "#")) for line in env.strip().splitlines())
    if data["knobs"].get("KMP_BLOCKTIME") not in (None, "unset"):
        assert f"export KMP_BLOCKTIME={data['knobs']['KMP_BLOCKTIME']}" in env
    text = tuner("best", "cli-fake", "--storage", storage, check=True).stdout
    assert "Best: throughput" in text and "Speedup over vendor settings" in text
    assert f"confirmed over 3 interleaved rounds — trial {data['trial']}" in text
    written = json.loads((tmp_path / "out" / "cli-fake" / "best.json").read_text())
    assert written["trial"] == data["trial"]


def test_best_shell_line_pasted_into_a_shell_runs_the_best_settings(
        finished_study: tuple[Path, str]) -> None:
    _, storage = finished_study
    data = json.loads(tuner("best", "cli-fake", "--storage", storage, "--format", "json",
                            check=True).stdout)
    line = tuner("best", "cli-fake", "--storage", storage, "--format", "shell",
                 check=True).stdout.strip()
    ran = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ["PATH"]})
    assert ran.returncode == 0, ran.stderr
    settings = reported_settings(ran.stdout)
    assert settings["threads"] == data["knobs"]["threads"]
    blocktime = data["knobs"].get("KMP_BLOCKTIME", "unset")
    assert settings["env"].get("KMP_BLOCKTIME", "unset") == str(blocktime)
    assert final_throughput(ran.stdout) == pytest.approx(data["value"], rel=0.02)


def test_list_and_delete(finished_study: tuple[Path, str]) -> None:
    _, storage = finished_study
    assert "cli-fake: 10/10 trials" in tuner("list", "--storage", storage, check=True).stdout
    tuner("delete", "cli-fake", "--storage", storage, check=True)
    gone = tuner("best", "cli-fake", "--storage", storage)
    assert gone.returncode == 1 and "no study named 'cli-fake'" in gone.stderr


def test_unreachable_database_is_one_clear_line() -> None:
    out = tuner("best", "x", "--storage", "postgresql://nobody@127.0.0.1:1/none")
    assert out.returncode == 1
    assert out.stderr.startswith("tuner: cannot open the study database postgresql://")
    assert "Traceback" not in out.stderr


def test_tune_without_numactl_on_path(tmp_path: Path, write_study: Callable[[str], Path]) -> None:
    """A fresh machine without numactl: the study being run drops its `auto` memory binding
    with a note and completes; another study of the file that asks for memory binding
    explicitly is not fitted to this host, so it does not stop the run."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("taskset",):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    path = write_study(f"""
studies:
  - name: runs-here
    workload:
      command: [{PYTHON}, {FAKE_WORKLOAD}, --intervals, "2"]
      parser: protocol
    knobs:
      threads: {{flag: --threads, low: 1, high: 3}}
      membind: auto
    budget: {{n_trials: 4}}
    noise: {{runs: 2}}
    confirm: {{top: 1, rounds: 2, max_rounds: 2}}
  - name: needs-numactl
    workload: {{builtin: resnet}}
    knobs: {{membind: [0]}}
""")
    out = tuner("tune", str(path), "--study", "runs-here", "--output", str(tmp_path / "out"),
                cwd=tmp_path, env={"PATH": str(bare)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "note: runs-here: knobs.membind (auto) left out: numactl is not installed" in out.stderr
    assert "confirmed over 2 interleaved rounds — trial" in out.stdout
    assert "membind" not in out.stdout.split("Launch:")[1].splitlines()[0]
    whole = tuner("tune", str(path), cwd=tmp_path, env={"PATH": str(bare)})
    assert whole.returncode == 2
    assert "needs-numactl" in whole.stderr or "studies[1].knobs.membind" in whole.stderr
    assert "cannot be applied here" in whole.stderr and "Traceback" not in whole.stderr


def test_list_shows_a_study_that_cannot_be_summarised_and_goes_on(
        finished_study: tuple[Path, str]) -> None:
    import optuna

    _, storage = finished_study
    optuna.create_study(study_name="another", storage=storage)
    rewrite_attrs(storage, "cli-fake", {"samples": "x", "applied": 5, "role": {"n": [1]}},
                  trials=3)
    out = tuner("list", "--storage", storage)
    assert out.returncode == 0, out.stderr
    assert "cli-fake: cannot be summarised:" in out.stdout
    assert "another: 0/? trials, no trial completed yet" in out.stdout


def test_version_names_tuner_python_and_optuna() -> None:
    from importlib import metadata

    out = tuner("--version", check=True).stdout.strip()
    assert out.startswith(f"tuner {metadata.version('tuner')} (Python {sys.version.split()[0]}")
    assert f"Optuna {metadata.version('optuna')})" in out


def test_the_license_pyproject_declares_is_there() -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (root / "pyproject.toml").read_text()


def test_export_round_trips_every_run(finished_study: tuple[Path, str], tmp_path: Path) -> None:
    """CSV read back equals the runs in the database: one row per run, the run's value of
    the metric, the trial's state and the knobs it applied; JSON holds the same rows."""
    import csv

    import optuna

    _, storage = finished_study
    study = optuna.load_study(study_name="cli-fake", storage=storage)
    target = tmp_path / "runs.csv"
    tuner("export", "cli-fake", "--storage", storage, "-o", str(target), check=True)
    rows = list(csv.DictReader(target.open()))
    as_json = json.loads(tuner("export", "cli-fake", "--storage", storage, "--format", "json",
                               check=True).stdout)
    assert len(rows) == len(as_json)
    from tuner.store.attributes import RUNS, SAMPLES

    expected = []
    for trial in study.trials:
        samples, runs = SAMPLES.get(trial), RUNS.get(trial)
        count = max(len(samples), len(runs))
        for index in range(count) if count else [None]:
            value = samples[index] if index is not None and index < len(samples) else None
            expected.append((str(trial.number), trial.state.name.lower(),
                             "" if index is None else str(index), value))
    got = [(r["trial"], r["state"], r["run"], r["run_value"]) for r in rows]
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    for (_, state, _, value), (_, _, _, sample) in zip(got, expected, strict=True):
        if sample is not None:  # a recorded sample is the run's value, to the digit
            assert float(value) == sample
        elif state == "pruned":  # a pruned run: the value it reached, no sample
            assert value == "" or float(value) > 0
    assert sum(1 for g in got if g[3] != "") >= sum(len(SAMPLES.get(t)) for t in study.trials)
    search = next(r for r in as_json if r["role"] == "search")
    flat = next(r for r in rows if r["trial"] == str(search["trial"]))
    assert {k[5:]: v for k, v in flat.items() if k.startswith("knob.") and v} == {
        k: str(v) for k, v in search["knobs"].items()}
    assert flat["env.host_class"] == search["environment"]["host_class"] != ""


def test_parquet_and_the_api_export_hold_the_same_rows_as_csv(
        finished_study: tuple[Path, str], tmp_path: Path) -> None:
    """Parquet read back with pyarrow equals the CSV rows, numbers kept as numbers; the API's
    ``/trials?format=csv`` is the same file as ``tuner export``'s."""
    import csv

    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    from tuner.service.app import create_app
    from tuner.settings import Settings

    _, storage = finished_study
    csv_file, parquet_file = tmp_path / "runs.csv", tmp_path / "runs.parquet"
    tuner("export", "cli-fake", "--storage", storage, "-o", str(csv_file), check=True)
    tuner("export", "cli-fake", "--storage", storage, "--format", "parquet", "-o",
          str(parquet_file), check=True)
    rows = list(csv.DictReader(csv_file.open()))
    table = pq.read_table(parquet_file).to_pylist()
    assert len(table) == len(rows) > 10
    assert list(table[0]) == list(rows[0])  # the same columns, in the same order
    for parquet_row, csv_row in zip(table, rows, strict=True):
        assert {k: "" if v is None else str(v) for k, v in parquet_row.items()} == csv_row
    assert all(isinstance(r["run_value"], float) for r in table if r["run_value"] is not None)
    assert {type(r["trial"]) for r in table} == {int}

    app = create_app(settings=Settings(api_token="t" * 32, protect_reads=True),
                     storage_url=storage, worker=None)
    with TestClient(app) as client:
        auth = {"Authorization": "Bearer " + "t" * 32}
        got = client.get("/studies/cli-fake/trials", params={"format": "csv"}, headers=auth)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("text/csv")
        assert 'filename="cli-fake-runs.csv"' in got.headers["content-disposition"]
        assert got.text == csv_file.read_text()
        rows_json = client.get("/studies/cli-fake/trials", params={"format": "json-rows"},
                               headers=auth).json()
        assert len(rows_json) == len(rows) and rows_json[0]["study"] == "cli-fake"
        page = client.get("/studies/cli-fake/trials", headers=auth).json()
        assert page["total"] == 10  # the default stays the JSON page of trials
        assert client.get("/studies/cli-fake/trials", params={"format": "xml"},
                          headers=auth).status_code == 422
        assert client.get("/studies/nope/trials", params={"format": "csv"},
                          headers=auth).status_code == 404
        assert client.get("/studies/cli-fake/trials",
                          params={"format": "csv"}).status_code == 401


def test_list_and_doctor_as_json(finished_study: tuple[Path, str]) -> None:
    _, storage = finished_study
    listed = json.loads(tuner("list", "--storage", storage, "--json", check=True).stdout)
    assert [row["name"] for row in listed] == ["cli-fake"]
    best = json.loads(tuner("best", "cli-fake", "--storage", storage, "--format", "json",
                            check=True).stdout)
    row = listed[0]
    assert row["trials"] == 10 and row["planned"] == 10 and row["confirmed"] is True
    assert row["best"]["trial"] == best["trial"] and row["best"]["knobs"] == best["knobs"]
    assert row["best"]["low"] <= row["best"]["value"] <= row["best"]["high"]
    assert sum(row["states"].values()) >= 10
    report = json.loads(tuner("doctor", "--json", check=True).stdout)
    assert report["cpu"]["logical_cpus"] == os.cpu_count()
    assert report["fingerprint"]["host_class"]
    assert report["knobs"]["built-in workloads (runtime tensorflow)"]["intra_op"] == {
        "available": True, "reason": None, "note": None}
    assert report["builtin_workloads"]["replay"]["framework"] is None
    assert "thp_enabled" in report["system_knobs"]["knobs"]
    text = tuner("doctor", check=True).stdout  # the text says what the JSON says
    assert f"logical CPUs {report['cpu']['logical_cpus']}" in text
    assert "built-in workloads in tuner's Python:" in text


def test_output_cut_short_by_its_reader_is_not_a_traceback() -> None:
    done = subprocess.run(f"{sys.executable} -m tuner.cli doctor | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("CPU: ") and "Traceback" not in done.stderr


def test_a_hostile_study_name_cannot_shape_the_download_header(tmp_path: Path) -> None:
    """A study another Optuna tool named with quotes, a line break and a header of its own:
    the export is still served, and its file name keeps only characters a header and a
    file system take as they are."""
    import optuna
    from fastapi.testclient import TestClient

    from tuner.service.app import create_app
    from tuner.settings import Settings

    storage = f"sqlite:///{tmp_path / 'hostile.db'}"
    name = 'x"; filename="..evil.sh\r\nSet-Cookie: a=b'
    study = optuna.create_study(study_name=name, storage=storage)
    study.enqueue_trial({"k": 1})
    study.optimize(lambda trial: trial.suggest_int("k", 1, 2), n_trials=1)
    app = create_app(settings=Settings(api_token="t" * 32), storage_url=storage, worker=None)
    with TestClient(app) as client:
        got = client.get(f"/studies/{quote(name, safe='')}/trials", params={"format": "csv"})
    assert got.status_code == 200, got.text
    disposition = got.headers["content-disposition"]
    assert disposition == ('attachment; filename="x___filename__..evil.sh__Set-Cookie__a_b'
                           '-runs.csv"')
    assert "set-cookie" not in {k.lower() for k in got.headers}
    import csv

    assert [row["study"] for row in csv.DictReader(io.StringIO(got.text))] == [name]
