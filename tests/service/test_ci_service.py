"""``POST /studies/{name}/ci`` and the worker that runs it: the request takes the write token,
and the admin token for a study that runs a command; a second request while one is queued
is refused; a real worker (trials as real subprocesses) takes the request, runs the gate and
adds its record to the history the API and the dashboard read; the request is then gone."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import optuna
import yaml
from fastapi.testclient import TestClient

from tests.conftest import PROGRAMS
from tests.service.test_api import ADMIN, WRITE, YAML, settings
from tuner.service.app import create_app
from tuner.service.worker import Worker
from tuner.store.attributes import CI_REQUEST

PROGRAM = str(PROGRAMS / "versioned_workload.py")
STUDY = yaml.safe_dump({
    "name": "fakestack",
    "workload": {"command": [sys.executable, PROGRAM, "--intervals", "1"],
                 "parser": "protocol", "timeout": 20},
    "knobs": {"threads": {"flag": "--threads", "low": 2, "high": 3, "default": 2},
              "block": {"flag": "--block", "choices": [1, 2], "default": 2}},
    "budget": {"n_trials": 5}, "noise": {"runs": 2},
    "confirm": {"top": 1, "rounds": 2, "max_rounds": 2},
    "ci": {"rounds": 3, "max_rounds": 9}})


def test_a_ci_run_queued_through_the_api_is_run_by_a_worker(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'ci.db'}"
    config = settings(lock_dir=tmp_path / "locks", worker_poll_seconds=0.1)
    with TestClient(create_app(settings=config, storage_url=storage)) as client:
        client.post("/studies", content=STUDY, headers={**YAML, **ADMIN}).raise_for_status()
        worker = Worker.on_this_host(storage, config)
        assert worker.run_once() == 1  # the study is tuned
        assert client.post("/studies/fakestack/ci").status_code == 401
        refused = client.post("/studies/fakestack/ci", headers=WRITE)
        assert refused.status_code == 403 and "runs a command" in refused.text
        bad = client.post("/studies/fakestack/ci", headers=ADMIN, json={"retune": "maybe"})
        assert bad.status_code == 422
        queued = client.post("/studies/fakestack/ci", headers=ADMIN, json={"retune": "never"})
        assert queued.status_code == 202, queued.text
        assert queued.json()["pending"]["retune"] == "never"
        again = client.post("/studies/fakestack/ci", headers=ADMIN)
        assert again.status_code == 409 and "already queued" in again.text

        assert worker.ci_candidates() == ["fakestack"]
        assert worker.run_once() >= 1
        body = client.get("/studies/fakestack/ci").json()
        assert body["pending"] is None
        [record] = body["history"]
        assert record["verdict"] in ("ok", "inconclusive") and record["retuned"] is None
        assert record["speedup_now"]["ratio"] > 0
        assert {c["rival"] for c in record["comparisons"]} == {"framework defaults",
                                                              "vendor settings"}
        page = client.get("/ui/studies/fakestack")
        assert page.status_code == 200 and 'id="ci-history"' in page.text
        assert worker.ci_candidates() == []
        # a run taken by a worker that died (claim_timeout ago) is taken again, and the API
        # takes a new request for it; one taken just now is left alone
        study = optuna.load_study(study_name="fakestack", storage=worker.storage)
        CI_REQUEST.put(study, {"retune": "never", "taken_by": "gone", "taken_at": time.time()})
        assert worker.ci_candidates() == []
        assert client.post("/studies/fakestack/ci", headers=ADMIN).status_code == 409
        CI_REQUEST.put(study, {"retune": "never", "taken_by": "gone",
                               "taken_at": time.time() - config.claim_timeout - 1})
        assert worker.ci_candidates() == ["fakestack"]
        assert client.post("/studies/fakestack/ci", headers=ADMIN).status_code == 202
        CI_REQUEST.put(study, {"retune": "never", "error": "boom", "taken_by": "w"})
        assert worker.ci_candidates() == []  # failed: kept for the API until asked again
        assert client.get("/studies/fakestack/ci").json()["pending"]["error"] == "boom"
