#!/usr/bin/env python3
"""Health checks of tuner's containers, installed in the images as ``tuner-healthcheck``.

    tuner-healthcheck http http://127.0.0.1:8000/healthz    # the API answers
    tuner-healthcheck db postgresql://tuner@postgres:5432/tuner   # the worker's database

``db`` opens a connection to the study database the worker was given (the same URL, the
password from ``PGPASSWORD`` as libpq reads it) and runs ``SELECT 1``: a worker whose
database is unreachable can run nothing. It is deliberately light (no Optuna, no tuner
import: some 50 ms of CPU) because it runs beside the trials the worker measures.
Exit status 0 when healthy, 1 (with one line on stderr) when not.
"""

from __future__ import annotations

import sqlite3
import sys
import urllib.request

TIMEOUT_S = 5


def check_http(url: str) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")


def libpq_url(url: str) -> str:
    """An SQLAlchemy URL (``postgresql+psycopg://...``) as libpq reads it."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def check_db(url: str) -> None:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
        return
    import psycopg  # tuner's PostgreSQL driver, in the image's environment

    with psycopg.connect(libpq_url(url), connect_timeout=TIMEOUT_S) as conn:
        conn.execute("SELECT 1").fetchone()


CHECKS = {"http": check_http, "db": check_db}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in CHECKS:
        print("usage: tuner-healthcheck http URL | db STORAGE_URL", file=sys.stderr)
        return 2
    kind, url = argv
    try:
        CHECKS[kind](url)
    except Exception as exc:  # OSError, URLError, psycopg.Error, sqlite3.Error: unhealthy
        print(f"unhealthy: {kind}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
