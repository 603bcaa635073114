"""Fixtures of the service tests: a finished study in a database, the API on it, tokens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKE_WORKLOAD, PYTHON

TOKENS = {"TUNER_API_TOKEN": "write-token", "TUNER_ADMIN_TOKEN": "admin-token",
          "TUNER_READ_TOKEN": "read-token"}
FINISHED = f"""
name: finished
description: a finished study of the fake workload
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --intervals, "3"]
  parser: protocol
knobs:
  threads: {{flag: --threads, low: 1, high: 5}}
  KMP_BLOCKTIME: [0, 1]
budget: {{n_trials: 10}}
sampler: {{seed: 4}}
noise: {{runs: 3}}
confirm: {{top: 2, rounds: 3}}
"""


def run_finished_study(storage: str, workdir: Path) -> None:
    path = workdir / "finished.yaml"
    path.write_text(FINISHED)
    subprocess.run([sys.executable, "-m", "tuner.cli", "tune", str(path), "--storage", storage,
                    "--quiet"], cwd=workdir, check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def finished_storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding the study ``finished`` (run once per test session)."""
    workdir = tmp_path_factory.mktemp("finished")
    storage = f"sqlite:///{workdir / 'service.db'}"
    run_finished_study(storage, workdir)
    return storage


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start a real ``tuner serve`` process; yields a function returning its base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> str:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "serve", "--port",
                                 str(port), *args], cwd=tmp_path,
                                env={**os.environ, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(150):
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "exited")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("tuner serve did not come up")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
