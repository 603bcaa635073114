"""docker/healthcheck.py, the images' `tuner-healthcheck` (the compose health checks of the
API and the workers), run here against real servers: healthy only when the API answers 200
and the worker's database takes a query."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.postgres import SERVER

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "docker" / "healthcheck.py"


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True,
                          timeout=30)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_usage() -> None:
    assert healthcheck().returncode == 2
    assert healthcheck("tcp", "x").returncode == 2


def test_http_is_healthy_only_on_200(api: str) -> None:
    assert healthcheck("http", f"{api}/healthz").returncode == 0
    unhealthy = healthcheck("http", f"{api}/other")
    assert unhealthy.returncode == 1 and "503" in unhealthy.stderr
    refused = healthcheck("http", "http://127.0.0.1:1/healthz")  # nothing listens there
    assert refused.returncode == 1 and refused.stderr.startswith("unhealthy: http:")


def test_db_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "tuner.db"
    sqlite3.connect(path).close()
    assert healthcheck("db", f"sqlite:///{path}").returncode == 0
    assert healthcheck("db", f"sqlite:///{tmp_path / 'missing.db'}").returncode == 1


@pytest.mark.postgres
def test_db_postgres_answers_or_not() -> None:
    assert healthcheck("db", f"{SERVER}/postgres").returncode == 0
    assert healthcheck("db", f"{SERVER.replace('postgresql', 'postgresql+psycopg')}/postgres"
                       ).returncode == 0
    missing = healthcheck("db", f"{SERVER}/no_such_database_here")
    assert missing.returncode == 1 and "no_such_database_here" in missing.stderr
    refused = healthcheck("db", "postgresql://postgres@127.0.0.1:1/postgres")
    assert refused.returncode == 1 and refused.stderr.startswith("unhealthy: db:")
