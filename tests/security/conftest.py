"""Fixtures of the security suite: real ``tuner serve`` processes (one per module at most),
shared because starting one costs seconds.

``guarded``: tokens set, reads protected, an embedded worker, a copy of the finished study,
and secrets planted in tuner's environment (the tokens, a database password, a variable
whose name says token, an innocently named one holding the admin token) that no trial may
see."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serving import TOKENS, start_server, stop_servers

ADMIN = {"Authorization": "Bearer admin-token"}
WRITE = {"Authorization": "Bearer write-token"}
READ = {"Authorization": "Bearer read-token"}
WRONG = {"Authorization": "Bearer not-a-token"}
YAML = {"Content-Type": "application/yaml"}
#: Values planted in tuner's environment besides the tokens: none may reach a trial.
PLANTED = {"PGPASSWORD": "pg-password-123", "MY_SERVICE_TOKEN": "service-token-456",
           "KMP_INNOCENT": "admin-token"}
SECRET_VALUES = (*TOKENS.values(), *(v for k, v in PLANTED.items() if k != "KMP_INNOCENT"))


@dataclass
class Server:
    url: str
    storage: str
    workdir: Path

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30,
                             **kwargs)  # type: ignore[arg-type]

    def wait_for(self, name: str, statuses: tuple[str, ...] = ("done", "failed"),
                 timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            detail: dict[str, object] = self.get(f"/studies/{name}", headers=READ).json()
            if detail.get("status") in statuses or time.monotonic() > deadline:
                return detail
            time.sleep(0.3)


def _copy(finished_storage: str, workdir: Path) -> str:
    copy = workdir / "tuner.db"
    shutil.copy(finished_storage.removeprefix("sqlite:///"), copy)
    return f"sqlite:///{copy}"


@pytest.fixture(scope="module")
def guarded(finished_storage: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Server]:
    """Reads protected, tokens set, an embedded worker on a copy of the finished study."""
    workdir = tmp_path_factory.mktemp("guarded")
    storage = _copy(finished_storage, workdir)
    procs: list[subprocess.Popen[bytes]] = []
    url = start_server(procs, workdir, env={
        **TOKENS, **PLANTED, "TUNER_PROTECT_READS": "true", "TUNER_DEFAULT_STORAGE": storage,
        "TUNER_WORKER_POLL_SECONDS": "0.3", "TUNER_LOCK_DIR": str(workdir / "locks")})
    yield Server(url=url, storage=storage, workdir=workdir)
    stop_servers(procs)


@pytest.fixture(scope="module")
def open_reads(finished_storage: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Server]:
    """Reads open (the default), tokens set, API only, on a copy of the finished study."""
    workdir = tmp_path_factory.mktemp("open")
    storage = _copy(finished_storage, workdir)
    procs: list[subprocess.Popen[bytes]] = []
    url = start_server(procs, workdir, "--storage", storage, env=TOKENS)
    yield Server(url=url, storage=storage, workdir=workdir)
    stop_servers(procs)
