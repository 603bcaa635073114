"""What a trial can see, and what the pages make of what trials and submitters store.

One study runs on the guarded server's embedded worker: a command workload that records its
environment (and every ancestor's it can read), with XSS payloads in every string a
submitter controls (description, knob name, choices; a choice that fails the run puts its
payload in the failure reason), then a trial's ``role`` set through optuna-dashboard with
the admin token. No token reaches the trial; every payload renders inert."""

from __future__ import annotations

import json
import sqlite3
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT, rewrite_attrs
from tests.security.conftest import ADMIN, PLANTED, READ, SECRET_VALUES, WRITE, YAML, Server

HERE = Path(__file__).resolve().parent
PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "javascript:alert(3)")
STUDY = """
name: xss-env
description: '{description}'
workload:
  command: [{python}, {program}, --out, {out}]
  parser: protocol
knobs:
  '{knob}': {{flag: --label, choices: ['{script}', 'javascript:alert(6)', plain]}}
budget: {{n_trials: 4}}
sampler: {{name: grid}}
noise: {{runs: 2}}
confirm: {{top: 1, rounds: 2, max_rounds: 2}}
"""


def yaml_quoted(text: str) -> str:
    return text.replace("'", "''")


@pytest.fixture(scope="module")
def study(guarded: Server) -> str:
    """The study ``xss-env``, run to its end; then a trial's role rewritten (admin)."""
    out = guarded.workdir / "trial-env.jsonl"
    body = STUDY.format(description=yaml_quoted(" ".join(PAYLOADS)), python=PYTHON,
                        program=HERE / "env_workload.py", out=out,
                        knob=yaml_quoted('"><img src=x onerror=alert(4)>'),
                        script="<script>alert(5)</script>")
    created = guarded.request("POST", "/studies", content=body, headers={**YAML, **ADMIN})
    assert created.status_code == 201, created.text
    detail = guarded.wait_for("xss-env", timeout=120)
    assert detail["status"] == "done", detail
    # a finished trial's attributes cannot be changed through Optuna (or optuna-dashboard):
    # written into the database directly, as anything with access to it could
    rewrite_attrs(guarded.storage, "xss-env", {"role": '"><img src=x onerror=alert(7)>'})
    rewrite_attrs(guarded.storage, "xss-env", {"reason": "<script>alert(8)</script>"},
                  trials=3)
    rewrite_study_attrs(guarded.storage, "xss-env", {
        "status_reason": "<script>alert(9)</script>", "host_class": "javascript:alert(10)",
        "unit": '"><img src=x onerror=alert(11)>'})
    return str(out)


def test_no_trial_sees_a_secret(guarded: Server, study: str) -> None:
    records = [json.loads(line) for line in Path(study).read_text().splitlines()]
    assert len(records) >= 4  # every run of the study wrote one
    for record in records:
        env = record["env"]
        assert not [k for k in env if k.startswith("TUNER_")], sorted(env)
        assert not set(PLANTED) & set(env), sorted(env)  # KMP_INNOCENT holds the admin token
        text = json.dumps(env)
        assert not [s for s in SECRET_VALUES if s in text]
        assert env.get("PYTHONUNBUFFERED") == "1"  # the environment really is recorded
        # nor in the environment of its parent (tuner serve) or any other ancestor
        assert record["ancestors"], "the parent's environment could not be checked"
        for pid, environ in record["ancestors"].items():
            assert not [s for s in SECRET_VALUES if s in environ], pid


def test_a_forked_trial_sees_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork-server path: the server and its forks start from the scrubbed environment
    (the replay workload prints the OMP_/KMP_/TF_ variables it sees)."""
    from tuner.execution.backend import RunRequest
    from tuner.execution.forkserver import ForkServerBackend
    from tuner.execution.launch import Launch
    from tuner.settings import child_base_environment, get_settings
    from tuner.spec.models import ParserSpec

    monkeypatch.setenv("TUNER_ADMIN_TOKEN", "admin-token-for-forks")
    monkeypatch.setenv("KMP_INNOCENT", "admin-token-for-forks")
    monkeypatch.setenv("KMP_VISIBLE", "shown")
    get_settings.cache_clear()
    surface = ROOT / "bench" / "surfaces" / "resnet-small.json"
    launch = Launch(argv=(sys.executable, "-m", "workloads.replay", "--surface", str(surface)))
    request = RunRequest(launch=launch, applied={}, metric="throughput", timeout=120,
                         base_env=child_base_environment([]),
                         parser_spec=ParserSpec(preset="protocol"), tail_lines=40,
                         kill_grace=3.0)
    backend = ForkServerBackend()
    try:
        outcome = backend.run(request, None)
        assert backend.servers, f"not forked: {backend.failures}"
        server = next(iter(backend.servers.values()))
        server_env = Path(f"/proc/{server.proc.pid}/environ").read_bytes()
    finally:
        backend.close()
    assert outcome.reported is not None, outcome.tail
    seen = outcome.reported["env"]
    assert seen.get("KMP_VISIBLE") == "shown", seen
    assert "KMP_INNOCENT" not in seen and "admin-token-for-forks" not in json.dumps(seen)
    assert b"admin-token-for-forks" not in server_env


def rewrite_study_attrs(storage: str, study: str, attrs: dict[str, object]) -> None:
    with sqlite3.connect(storage.removeprefix("sqlite:///")) as db:
        (study_id,) = db.execute("SELECT study_id FROM studies WHERE study_name = ?",
                                 (study,)).fetchone()
        for key, value in attrs.items():
            db.execute("DELETE FROM study_user_attributes WHERE study_id = ? AND key = ?",
                       (study_id, key))
            db.execute("INSERT INTO study_user_attributes (study_id, key, value_json) "
                       "VALUES (?, ?, ?)", (study_id, key, json.dumps(value)))


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(html: str, where: str) -> None:
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("img", "iframe", "object", "embed"), (where, tag, attrs)
        if tag == "script":
            assert attrs == [("src", "/ui/static/app.js")], (where, attrs)
        for name, value in attrs:
            assert not name.startswith("on"), (where, tag, name, value)
            assert not (value or "").strip().lower().startswith("javascript:"), (where, tag, name)
    for payload in PAYLOADS[:2]:
        assert payload not in html, where


def test_payloads_render_inert_on_the_dashboard(guarded: Server, study: str) -> None:
    listing = guarded.get("/ui", headers=READ)
    assert listing.status_code == 200
    assert_inert(listing.text, "/ui")
    page = guarded.get("/ui/studies/xss-env", headers=READ)
    assert page.status_code == 200
    # the payloads are there, as text: escaped, not dropped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    for shown in ("onerror=alert(7)", "&lt;script&gt;alert(9)", "javascript:alert(10)",
                  "onerror=alert(11)"):  # the rewritten attributes are shown, escaped
        assert shown in page.text, shown
    assert "javascript:alert(10)" in listing.text
    assert 'id="trials-chart"' in page.text
    assert_inert(page.text, "/ui/studies/xss-env")


def test_the_json_apis_are_json(guarded: Server, study: str) -> None:
    for path in ("/studies", "/studies/xss-env", "/studies/xss-env/trials",
                 "/studies/xss-env/best", "/optuna/api/studies"):
        response = guarded.get(path, headers=READ)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("application/json"), path
        assert response.headers["x-content-type-options"] == "nosniff", path
    shell = guarded.get("/studies/xss-env/best?format=shell", headers=READ)
    assert shell.headers["content-type"].startswith("text/plain")


def test_a_malformed_attribute_does_not_fail_the_lists(guarded: Server, study: str) -> None:
    rewrite_attrs(guarded.storage, "finished",
                  {"samples": "x", "applied": 5, "role": {"nested": [1]}}, trials=3)
    listing = guarded.get("/studies", headers=READ)
    assert listing.status_code == 200, listing.text
    names = {i["name"]: i for i in listing.json()["items"]}
    assert {"finished", "xss-env"} <= set(names)
    assert names["xss-env"]["status"] == "done"
    # the broken study is listed, as one that cannot be summarised, and says why
    assert names["finished"]["status"] == "unreadable", names["finished"]
    assert "cannot be summarised" in names["finished"]["status_reason"]
    page = guarded.get("/ui", headers=READ)
    assert page.status_code == 200 and 'data-study="finished"' in page.text
    # its own pages say what is wrong with it, as a client error, not a server error
    for path in ("/studies/finished", "/studies/finished/trials", "/studies/finished/best",
                 "/ui/studies/finished"):
        response = guarded.get(path, headers=READ)
        assert response.status_code == 409, (path, response.status_code, response.text)
        assert "cannot be summarised" in response.json()["detail"]


def test_deleting_a_running_study_stops_it_and_the_worker_goes_on(guarded: Server,
                                                                  study: str) -> None:
    slow = (f"name: slow\nworkload: {{command: [{PYTHON}, -c, 'import time; time.sleep(3)'],"
            " parser: protocol}\nbudget: {n_trials: 3}\nnoise: {runs: 2}\n")
    assert guarded.request("POST", "/studies", content=slow,
                           headers={**YAML, **ADMIN}).status_code == 201
    assert guarded.wait_for("slow", ("running",))["status"] == "running"
    assert guarded.request("DELETE", "/studies/slow", headers=WRITE).status_code == 403
    assert guarded.request("DELETE", "/studies/slow", headers=ADMIN).status_code == 204
    assert guarded.get("/studies/slow", headers=READ).status_code == 404
    assert guarded.get("/healthz").json()["worker"] == "alive"
