"""Every route of the API, the token rules, validation errors with line and field,
pagination and unknown studies, on a real SQLite study database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import TOKENS
from tuner.service.app import create_app
from tuner.settings import Settings

WRITE = {"Authorization": "Bearer write-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
READ = {"Authorization": "Bearer read-token"}
YAML = {"Content-Type": "application/yaml"}
QUICK = "name: {name}\nworkload: {{builtin: resnet}}\nknobs: {{intra_op: auto}}\n" \
        "budget: {{n_trials: 6}}\n"


def settings(**extra: object) -> Settings:
    return Settings(api_token=TOKENS["TUNER_API_TOKEN"], admin_token=TOKENS["TUNER_ADMIN_TOKEN"],
                    read_token=TOKENS["TUNER_READ_TOKEN"], **extra)  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(settings=settings(), storage_url=f"sqlite:///{tmp_path / 'api.db'}")
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def finished_client(finished_storage: str) -> Iterator[TestClient]:
    app = create_app(settings=settings(), storage_url=finished_storage)
    with TestClient(app) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["storage"] == "ok"


def test_unreachable_database_is_a_503_not_a_crash(client: TestClient) -> None:
    class Broken:
        def get_all_studies(self) -> None:
            raise ConnectionError("connection refused")

    client.app.state.service.storage = Broken()  # type: ignore[attr-defined]
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["storage"] == "unreachable: connection refused"


def test_submit_needs_a_token(client: TestClient) -> None:
    body = QUICK.format(name="a")
    missing = client.post("/studies", content=body, headers=YAML)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = client.post("/studies", content=body, headers={**YAML, "Authorization": "Bearer x"})
    assert wrong.status_code == 403
    read_only = client.post("/studies", content=body, headers={**YAML, **READ})
    assert read_only.status_code == 403
    created = client.post("/studies", content=body, headers={**YAML, **WRITE})
    assert created.status_code == 201
    assert created.json() == [{"name": "a", "status": "queued",
                               "url": "http://testserver/studies/a"}]
    assert client.post("/studies", content=body, headers={**YAML, **WRITE}).status_code == 409


def test_a_command_study_needs_the_admin_token(client: TestClient) -> None:
    body = "name: cmd\nworkload: {command: [python, bench.py], parser: protocol}\n"
    refused = client.post("/studies", content=body, headers={**YAML, **WRITE})
    assert refused.status_code == 403 and "admin token" in refused.json()["detail"]
    assert client.post("/studies", content=body, headers={**YAML, **ADMIN}).status_code == 201


def test_json_bodies_and_several_studies(client: TestClient) -> None:
    doc = {"studies": [{"name": "j1", "workload": {"builtin": "resnet"}},
                       {"name": "j2", "workload": {"builtin": "gnmt"}}]}
    response = client.post("/studies", json=doc, headers=WRITE)
    assert response.status_code == 201 and [s["name"] for s in response.json()] == ["j1", "j2"]


@pytest.mark.parametrize("body,line,field,text", [
    ("name: x\nworkload: {builtin: resnet}\nknobs:\n  intra_op: {low: 1, high: 2\n", 5, "",
     "YAML syntax error"),
    ("name: x\nworkload: {builtin: resnet}\nknobs: {intr_op: 3}\n", 3, "knobs.intr_op",
     "did you mean 'intra_op'"),
    ("name: x\nworkload: {builtin: resnet}\nbudget: {n_trials: zero}\n", 3, "budget.n_trials",
     "valid integer"),
    ("name: x\nworkload: {command: 'rm -rf /', parser: protocol}\n", 2, "workload.command",
     "shell string"),
    ("name: x\nworkload: {builtin: resnet}\nknobs: {physcpubind: 5000}\n", 3,
     "knobs.physcpubind.value", "physical cores"),
    ("name: x\nworkload: {builtin: resnet}\nstorage: sqlite:///mine.db\n", None, "x.storage",
     "the service chooses the storage"),
    ("[1, 2", 1, "", "YAML syntax error"),
])
def test_invalid_study_files_are_422_with_line_and_field(
        client: TestClient, body: str, line: int | None, field: str, text: str) -> None:
    response = client.post("/studies", content=body, headers={**YAML, **WRITE})
    assert response.status_code == 422, response.text
    issues = response.json()["issues"]
    assert any(i["line"] == line and i["field"] == field and text in i["message"]
               for i in issues), issues


def test_not_utf8_is_422(client: TestClient) -> None:
    response = client.post("/studies", content=b"\xff\xfe\x00", headers={**YAML, **WRITE})
    assert response.status_code == 422 and "UTF-8" in response.text


def test_list_paginates_and_filters(client: TestClient) -> None:
    for index in range(5):
        client.post("/studies", content=QUICK.format(name=f"s{index}"), headers={**YAML, **WRITE})
    page = client.get("/studies", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 5 and page["offset"] == 1 and page["limit"] == 2
    assert [s["name"] for s in page["items"]] == ["s1", "s2"]
    assert client.get("/studies", params={"status": "done"}).json()["total"] == 0
    assert client.get("/studies", params={"limit": 0}).status_code == 422
    assert client.get("/studies", params={"status": "bogus"}).status_code == 422


def test_unknown_studies_are_404(client: TestClient) -> None:
    for method, path in (("get", "/studies/nope"), ("get", "/studies/nope/trials"),
                         ("get", "/studies/nope/best"), ("post", "/studies/nope/stop"),
                         ("post", "/studies/nope/resume"), ("delete", "/studies/nope")):
        response = getattr(client, method)(path, headers=WRITE)
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == "no study named 'nope'"


def test_stop_resume_delete(client: TestClient) -> None:
    client.post("/studies", content=QUICK.format(name="life"), headers={**YAML, **WRITE})
    assert client.post("/studies/life/stop").status_code == 401
    assert client.post("/studies/life/stop", headers=WRITE).json()["status"] == "stopped"
    assert client.post("/studies/life/stop", headers=WRITE).status_code == 409
    assert client.post("/studies/life/resume", headers=WRITE).json()["status"] == "queued"
    assert client.post("/studies/life/resume", headers=WRITE).status_code == 409
    assert client.get("/studies/life/best").status_code == 409  # nothing completed yet
    assert client.delete("/studies/life", headers=READ).status_code == 403
    assert client.delete("/studies/life", headers=WRITE).status_code == 204
    assert client.get("/studies/life").status_code == 404


def test_reads_can_be_protected(tmp_path: Path) -> None:
    app = create_app(settings=settings(protect_reads=True),
                     storage_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(app) as test_client:
        assert test_client.get("/studies").status_code == 401
        assert test_client.get("/studies", headers={"Authorization": "Bearer x"}
                               ).status_code == 403
        for headers in (READ, WRITE, ADMIN):
            assert test_client.get("/studies", headers=headers).status_code == 200
        assert test_client.get("/healthz").status_code == 200  # health stays open
        assert test_client.get("/ui").status_code == 401
        login = test_client.post("/ui/login", data={"token": "read-token"},
                                 follow_redirects=False)
        assert login.status_code == 303
        assert test_client.get("/ui").status_code == 200  # the cookie now carries the token


def test_a_finished_study(finished_client: TestClient) -> None:
    detail = finished_client.get("/studies/finished").json()
    assert detail["status"] == "done" and detail["trials"] == 10 and detail["planned"] == 10
    assert detail["noise"]["samples"] and detail["confirmation"]["rounds"] == 3
    assert set(detail["baselines"]) == {"defaults", "vendor"}
    best = detail["best_config"]
    assert best["confirmed"] and best["interval"]["low"] <= best["value"] <= best[
        "interval"]["high"]
    assert best["speedups"]["defaults"]["low"] is not None
    assert "KMP_BLOCKTIME" in detail["screening"]
    listed = finished_client.get("/studies").json()["items"][0]
    assert listed["name"] == "finished" and listed["best"] == pytest.approx(best["value"])
    assert listed["speedup_over_defaults"]["ratio"] == pytest.approx(
        best["speedups"]["defaults"]["ratio"])


def test_trials_paginate_and_filter(finished_client: TestClient) -> None:
    everything = finished_client.get("/studies/finished/trials").json()
    assert everything["total"] == 10
    assert [t["number"] for t in everything["items"]] == list(range(10))
    assert everything["items"][0]["role"] == "defaults"
    assert len(everything["items"][0]["samples"]) == 3
    page = finished_client.get("/studies/finished/trials",
                               params={"offset": 8, "limit": 5}).json()
    assert [t["number"] for t in page["items"]] == [8, 9]
    complete = finished_client.get("/studies/finished/trials",
                                   params={"state": "complete"}).json()
    assert all(t["state"] == "complete" for t in complete["items"])
    assert finished_client.get("/studies/finished/trials",
                               params={"state": "nope"}).status_code == 422


def test_best_in_three_formats(finished_client: TestClient) -> None:
    best = finished_client.get("/studies/finished/best").json()
    if "threads" in best["knobs"]:
        assert f"--threads {best['knobs']['threads']}" in best["launch"]
    shell = finished_client.get("/studies/finished/best", params={"format": "shell"})
    assert shell.headers["content-type"].startswith("text/plain")
    assert shell.text.strip() == best["launch"]
    env = finished_client.get("/studies/finished/best", params={"format": "env"}).text
    assert env.startswith("# finished: confirmed best")
    assert finished_client.get("/studies/finished/best",
                               params={"format": "xml"}).status_code == 422


def test_dashboard_pages_render(finished_client: TestClient) -> None:
    page = finished_client.get("/ui")
    assert page.status_code == 200 and 'data-study="finished"' in page.text
    study = finished_client.get("/ui/studies/finished")
    assert study.status_code == 200
    for marker in ('id="best-knobs"', 'id="trials-chart"', 'id="launch"', 'id="speedups"',
                   'id="copy-launch"', 'id="importance"', 'id="noise"', 'id="precision"'):
        assert marker in study.text, marker
    precision = finished_client.get("/studies/finished").json()["confirmation"]["precision"]
    assert f'data-target="{precision["target"]}"' in study.text
    assert f'data-reached="{precision["reached"]}"' in study.text
    assert finished_client.get("/ui/studies/nope").status_code == 404
    assert finished_client.get("/", follow_redirects=False).headers["location"] == "/ui"


def test_optuna_dashboard_is_mounted(finished_client: TestClient) -> None:
    page = finished_client.get("/optuna/dashboard")
    assert page.status_code == 200 and 'src="/optuna/static/bundle.js"' in page.text
    bundle = finished_client.get("/optuna/static/bundle.js")
    assert b'url_prefix:"/optuna/dashboard"' in bundle.content
    studies = finished_client.get("/optuna/api/studies").json()["study_summaries"]
    assert [s["study_name"] for s in studies] == ["finished"]


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {"/healthz", "/studies", "/studies/{name}", "/studies/{name}/trials",
                          "/studies/{name}/best", "/studies/{name}/stop",
                          "/studies/{name}/resume"}
    assert "application/yaml" in paths["/studies"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


SYSTEM = "name: {name}\nworkload: {{builtin: resnet}}\nknobs:\n  intra_op: auto\n" \
         "  thp_enabled: [always, never]\n"


def test_system_knobs_need_the_admin_token_and_the_service_can_refuse_them(
        tmp_path: Path) -> None:
    app = create_app(settings=settings(), storage_url=f"sqlite:///{tmp_path / 'api.db'}")
    with TestClient(app) as open_client:
        refused = open_client.post("/studies", content=SYSTEM.format(name="s1"),
                                   headers={**YAML, **WRITE})
        assert refused.status_code == 403
        assert "s1.knobs.thp_enabled: a system knob" in refused.json()["detail"]
        accepted = open_client.post("/studies", content=SYSTEM.format(name="s1"),
                                    headers={**YAML, **ADMIN})
        assert accepted.status_code == 201, accepted.text
    closed = create_app(settings=settings(system_knobs="none"),
                        storage_url=f"sqlite:///{tmp_path / 'closed.db'}")
    with TestClient(closed) as closed_client:
        body = SYSTEM.format(name="s2")
        for token in (WRITE, ADMIN):
            response = closed_client.post("/studies", content=body, headers={**YAML, **token})
            assert response.status_code == 422, response.text
            assert "does not allow system knobs" in response.text
            assert "s2.knobs.thp_enabled" in response.text
        assert closed_client.get("/studies/s2", headers=READ).status_code == 404
