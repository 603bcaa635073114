"""Real ``tuner serve`` processes for tests, shared by the service and security suites: the
tokens, a finished study in a database, starting a server and waiting for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import FAKE_WORKLOAD, PYTHON

TOKENS = {"TUNER_API_TOKEN": "write-token", "TUNER_ADMIN_TOKEN": "admin-token",
          "TUNER_READ_TOKEN": "read-token"}
FINISHED = f"""
name: finished
description: a finished study of the fake workload
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --intervals, "3"]
  parser: protocol
  runtime: tensorflow
knobs:
  threads: {{flag: --threads, low: 1, high: 5}}
  KMP_BLOCKTIME: [0, 1]
budget: {{n_trials: 10}}
sampler: {{seed: 4}}
noise: {{runs: 3}}
confirm: {{top: 2, rounds: 3, max_rounds: 3}}
"""


def run_finished_study(storage: str, workdir: Path) -> None:
    path = workdir / "finished.yaml"
    path.write_text(FINISHED)
    subprocess.run([sys.executable, "-m", "tuner.cli", "tune", str(path), "--storage", storage,
                    "--quiet"], cwd=workdir, check=True, capture_output=True, timeout=300)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(procs: list[subprocess.Popen[bytes]], cwd: Path, *args: str,
                 env: dict[str, str] | None = None) -> str:
    """Start ``tuner serve ARGS`` in ``cwd`` (appended to ``procs``) and return its base URL
    once ``/healthz`` answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "serve", "--port", str(port),
                             *args], cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "exited")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("tuner serve did not come up")


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
