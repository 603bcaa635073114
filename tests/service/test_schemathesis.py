"""A schemathesis run (its CLI) against the OpenAPI schema of a real ``tuner serve`` process:
no generated request, with or without a valid token, makes the server fail (no 5xx)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.conftest import TOKENS


# without a token (11 s) in the slow run: the admin token reaches every route
@pytest.mark.parametrize("token", [pytest.param(None, marks=pytest.mark.slow), "admin-token"])
def test_no_server_error(token: str | None, finished_storage: str,
                         serve: Callable[..., str], tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"  # it may delete studies: not the session's shared one
    shutil.copy(finished_storage.removeprefix("sqlite:///"), copy)
    url = serve("--storage", f"sqlite:///{copy}", env=TOKENS)
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    schemathesis = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run(
        [str(schemathesis), "run", f"{url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "25", "--seed", "1", "--report", "junit",
         "--report-dir", str(tmp_path), *headers],
        capture_output=True, text=True, timeout=600, env={"PATH": "/usr/bin:/bin",
                                                          "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    report = next(tmp_path.glob("*.xml")).read_text()
    assert "<testcase" in report and "GET /studies/{name}" in report
