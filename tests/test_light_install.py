"""A light install as a new user makes it: ``pip install .`` (no extras) in a fresh venv,
outside the repository. It stays under 400 MB, and the core works without TensorFlow:
validate, tune a command study, list, best, export, init, doctor, serve (API and dashboard);
a built-in TensorFlow workload is refused with the extra to install, Parquet with its
extra. Slow (the install takes a minute or two from pip's cache): ``pytest -m slow
tests/test_light_install.py``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAKE_WORKLOAD, ROOT
from tests.serving import free_port

pytestmark = pytest.mark.slow

#: The issue's bound for the core install (the venv, everything in it).
MAX_MB = 400


def _size_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total / 2**20


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install`` of a copy of the repository (no extras)."""
    where = tmp_path_factory.mktemp("light")
    source = where / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.db", "tuner-out", ".mypy_cache", ".ruff_cache",
        ".pytest_cache", "*.egg-info", "build"))
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    started = time.monotonic()
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"light install: {time.monotonic() - started:.0f} s, {_size_mb(venv):.0f} MB")
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNER_", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", HOME=str(cwd),
               TUNER_STATE_DIR=str(cwd / "state"))
    return subprocess.run([str(venv / "bin" / "tuner"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_core_installs_small_and_without_the_frameworks(light: Path) -> None:
    assert _size_mb(light) < MAX_MB, f"{_size_mb(light):.0f} MB"
    python = str(light / "bin" / "python")
    for absent in ("tensorflow", "torch", "pyarrow"):
        probe = subprocess.run([python, "-c", f"import {absent}"], capture_output=True)
        assert probe.returncode != 0, f"{absent} came with the core install"


def test_the_core_works_without_tensorflow(light: Path, tmp_path: Path) -> None:
    python = str(light / "bin" / "python")
    study = tmp_path / "fake.yaml"
    study.write_text(f"""name: light
workload:
  command: [{python}, {FAKE_WORKLOAD}, --intervals, "2"]
  parser: protocol
knobs:
  threads: {{flag: --threads, low: 1, high: 3}}
budget: {{n_trials: 4}}
noise: {{runs: 2}}
confirm: {{top: 1, rounds: 2}}
""")
    assert run(light, "validate", str(study), cwd=tmp_path).returncode == 0
    tuned = run(light, "tune", str(study), "--quiet", cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr
    assert "Best: throughput" in tuned.stdout
    listed = json.loads(run(light, "list", "--json", cwd=tmp_path).stdout)
    assert listed[0]["name"] == "light" and listed[0]["best"] is not None
    best = json.loads(run(light, "best", "light", "--format", "json", cwd=tmp_path).stdout)
    assert "threads" in best["knobs"]
    exported = run(light, "export", "light", "-o", "runs.csv", cwd=tmp_path)
    assert exported.returncode == 0 and (tmp_path / "runs.csv").read_text().count("\n") > 4
    parquet = run(light, "export", "light", "--format", "parquet", "-o", "x.parquet",
                  cwd=tmp_path)
    assert parquet.returncode == 1 and "pip install 'tuner[parquet]'" in parquet.stderr

    resnet = tmp_path / "resnet.yaml"
    resnet.write_text("name: r\nworkload: {builtin: resnet}\nknobs: {intra_op: auto}\n")
    refused = run(light, "tune", str(resnet), cwd=tmp_path)
    assert refused.returncode == 2
    assert "needs tensorflow" in refused.stderr
    assert "pip install 'tuner[tensorflow]'" in refused.stderr

    init = run(light, "init", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert run(light, "validate", "study.yaml", cwd=tmp_path).returncode == 0
    example = run(light, "init", "--example", "sysbench-cpu", "-o", "-", cwd=tmp_path)
    assert example.returncode == 0 and "name: sysbench-cpu" in example.stdout  # in the wheel
    doctor = json.loads(run(light, "doctor", "--json", cwd=tmp_path).stdout)
    assert doctor["builtin_workloads"]["resnet"]["available"] is False
    assert doctor["builtin_workloads"]["proxy"]["available"] is True


def test_the_service_runs_from_the_core_install(light: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNER_")}
    env.update(HOME=str(tmp_path), TUNER_STATE_DIR=str(tmp_path / "state"),
               TUNER_API_TOKEN="a" * 32)
    proc = subprocess.Popen([str(light / "bin" / "tuner"), "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        auth = {"Authorization": "Bearer " + "a" * 32}
        assert httpx.get(url + "/studies", headers=auth, timeout=10).status_code == 200
        assert httpx.get(url + "/ui", timeout=10).status_code in (200, 401)
        submitted = httpx.post(url + "/studies", timeout=30, headers={
            **auth, "Content-Type": "application/yaml"},
            content="name: r\nworkload: {builtin: resnet}\nknobs: {intra_op: auto}\n")
        assert submitted.status_code == 422
        assert "tuner[tensorflow]" in submitted.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
