"""A study's ci history in the service: ``GET /studies/{name}/ci`` (records in order, the
queued run, 404, the token rules), the study page's "CI history" section, and the chart
(``tuner.service.dashboard.ci_chart``): data attributes, whiskers, escaping, malformed
records shown as absent rather than failing."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from tests.service.test_api import READ, WRITE, YAML, settings
from tuner.service.app import create_app
from tuner.service.dashboard import ci_chart
from tuner.store.attributes import CI_REQUEST, CI_RUNS

QUICK = "name: {name}\nworkload: {{builtin: resnet}}\nknobs: {{intra_op: auto}}\n" \
        "budget: {{n_trials: 6}}\n"
SVG = "{http://www.w3.org/2000/svg}"


def record(run: int, *, verdict: str = "ok", ratio: float = 1.2, low: float = 1.1,
           high: float = 1.3, label: str = "TensorFlow", then: str = "2.14.0",
           now: str = "2.21.0") -> dict[str, Any]:
    return {
        "run": run, "at": 1764000000.0 + 86400 * run, "host": "ci-runner-1",
        "host_class": "28c2n-ab12cd34ef56",
        "environment": {"tensorflow": now, "kernel": "6.1.0", "tuner": "0.1.0"},
        "changed": [{"field": "tensorflow", "label": label, "then": then, "now": now}],
        "deployed": {"source": "best.json", "knobs": {"intra_op": 4, "inter_op": 1}},
        "speedup_then": {"ratio": 1.31, "low": 1.22, "high": 1.40, "rounds": 6, "level": 0.98},
        "speedup_now": {"ratio": ratio, "low": low, "high": high, "rounds": 9, "level": 0.98},
        "edge": {"ratio": ratio / 1.31, "low": low / 1.4, "high": high / 1.22},
        "comparisons": [{"rival": "framework defaults", "ratio": ratio, "low": low,
                         "high": high, "standing": "fine"}],
        "retuned": None, "new_best": None, "verdict": verdict,
        "reason": f"run {run} was {verdict}", "threshold": 0.05, "rounds": 9,
        "exit_code": 1 if verdict == "regressed" else 0, "written": None}


RECORDS = [record(1), record(2, verdict="regressed", ratio=0.9, low=0.84, high=0.97,
                             label="oneDNN", then="3.4", now="3.7.0"),
           record(3, verdict="improved", ratio=1.35, low=1.28, high=1.41)]


def _client(tmp_path: Path, **extra: object) -> TestClient:
    app = create_app(settings=settings(**extra), storage_url=f"sqlite:///{tmp_path / 'ci.db'}")
    return TestClient(app)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path) as test_client:
        test_client.post("/studies", content=QUICK.format(name="resnet"),
                         headers={**YAML, **WRITE}).raise_for_status()
        yield test_client


def study_of(client: TestClient, name: str = "resnet") -> optuna.Study:
    storage = client.app.state.service.storage  # type: ignore[attr-defined]
    return optuna.load_study(study_name=name, storage=storage)


def test_history_in_order_with_the_pending_run(client: TestClient) -> None:
    empty = client.get("/studies/resnet/ci")
    assert empty.status_code == 200
    assert empty.json() == {"study": "resnet", "history": [], "pending": None}
    study = study_of(client)
    CI_RUNS.put(study, RECORDS)  # large: stored in parts, read back whole
    request = {"fail_on": "regressed", "retune": "auto", "submitted_at": 1764500000.0}
    CI_REQUEST.put(study, request)
    body = client.get("/studies/resnet/ci").json()
    assert body["study"] == "resnet" and body["pending"] == request
    assert body["history"] == RECORDS
    assert [r["run"] for r in body["history"]] == [1, 2, 3]
    assert [r["speedup_now"]["ratio"] for r in body["history"]] == [1.2, 0.9, 1.35]


def test_unknown_study_is_a_404(client: TestClient) -> None:
    for headers in ({}, READ):
        response = client.get("/studies/nope/ci", headers=headers)
        assert response.status_code == 404
        assert response.json()["detail"] == "no study named 'nope'"


def test_reads_follow_the_token_rules(tmp_path: Path) -> None:
    with _client(tmp_path, protect_reads=True) as test_client:
        test_client.post("/studies", content=QUICK.format(name="resnet"),
                         headers={**YAML, **WRITE}).raise_for_status()
        missing = test_client.get("/studies/resnet/ci")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert test_client.get("/studies/resnet/ci",
                               headers={"Authorization": "Bearer x"}).status_code == 403
        assert test_client.get("/studies/nope/ci").status_code == 401  # no study probing
        assert test_client.get("/studies/resnet/ci", headers=READ).status_code == 200
        assert test_client.get("/ui/studies/resnet").status_code == 401


def test_the_route_is_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/studies/{name}/ci"]["get"]
    assert operation["tags"] == ["ci"]
    assert {"200", "401", "403", "404", "422"} <= set(operation["responses"])


MALFORMED: list[Any] = [
    1, "text", None, ["a", "list"],
    {"run": 2, "speedup_now": {"ratio": "1.2", "low": 1.1, "high": 1.3}, "verdict": "ok"},
    {"run": "3", "at": "yesterday", "changed": "tensorflow", "speedup_now": [1.2],
     "verdict": {"not": "text"}, "reason": 7, "host_class": ["x"]},
    {"changed": [None, 3, {"label": 5}, {"field": "kernel", "now": "6.8"}],
     "speedup_now": {"ratio": 1.1, "low": 1.2, "high": 1.0}, "at": 1e300},
    {"run": 5, "speedup_now": {"ratio": float("nan"), "low": float("-inf"), "high": 2.0},
     "edge": {"ratio": float("inf")}, "verdict": "weird"},
    {},
    record(7),
]


def test_malformed_records_are_absent_not_errors(client: TestClient) -> None:
    study = study_of(client)
    CI_RUNS.put(study, MALFORMED)
    CI_REQUEST.put(study, ["not", "an", "object"])  # type: ignore[arg-type]
    response = client.get("/studies/resnet/ci")
    assert response.status_code == 200
    body = response.json()
    assert body["pending"] is None
    assert len(body["history"]) == 6  # the JSON objects, in order
    assert body["history"][3]["speedup_now"] == {"ratio": None, "low": None, "high": 2.0}
    assert body["history"][3]["edge"] == {"ratio": None}
    assert body["history"][-1] == record(7)
    page = client.get("/ui/studies/resnet")
    assert page.status_code == 200
    assert page.text.count('<tr data-run="') == 6
    svg = ET.fromstring(_svg_of(page.text))
    measured = [g for g in svg.iter(f"{SVG}g") if "ci-point" in g.get("class", "")]
    # only run 3 of [2, "3", ?, 5, ?, 7] keeps a usable ratio, and (low > high) no whisker
    assert [(g.get("data-run"), g.get("data-ratio"), g.get("data-low")) for g in measured] \
        == [("3", "1.1", None), ("7", "1.2", "1.1")]


def test_a_history_that_is_not_a_list(client: TestClient) -> None:
    study_of(client).set_user_attr(CI_RUNS.key, {"run": 1})
    assert client.get("/studies/resnet/ci").json()["history"] == []
    page = client.get("/ui/studies/resnet")
    assert page.status_code == 200 and 'id="ci-history"' not in page.text


def test_the_study_page_shows_the_history(client: TestClient) -> None:
    page = client.get("/ui/studies/resnet")
    assert page.status_code == 200 and "CI history" not in page.text  # no record, no section
    study = study_of(client)
    CI_RUNS.put(study, [*RECORDS, record(4, label="<script>alert(1)</script>")])
    CI_REQUEST.put(study, {"fail_on": "regressed", "retune": "auto",
                           "submitted_at": 1764500000.0})
    text = client.get("/ui/studies/resnet").text
    assert "CI history" in text and 'id="ci-chart"' in text
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "A ci run is queued for a worker (fail on regressed, re-tune auto)" in text
    assert "0.90x [0.84, 0.97]" in text and "TensorFlow 2.14.0→2.21.0" in text
    assert 'class="verdict regressed">regressed' in text


# -- the chart ---------------------------------------------------------------------------
def _svg_of(page: str) -> str:
    start = page.index('<svg id="ci-chart"')
    return page[start:page.index("</svg>", start) + len("</svg>")]


def _points(svg: str | ET.Element) -> list[ET.Element]:
    root = ET.fromstring(svg) if isinstance(svg, str) else svg  # well-formed, whatever
    assert root.get("id") == "ci-chart"                         # the records held
    return [g for g in root.iter(f"{SVG}g") if "ci-run" in g.get("class", "")]


def test_points_carry_the_records_numbers() -> None:
    svg = ci_chart.render(ci_chart.rows(RECORDS))
    points = _points(svg)
    assert [(int(p.get("data-run", "")), float(p.get("data-ratio", "")),
             float(p.get("data-low", "")), float(p.get("data-high", "")), p.get("data-verdict"))
            for p in points] == [
        (r["run"], r["speedup_now"]["ratio"], r["speedup_now"]["low"], r["speedup_now"]["high"],
         r["verdict"]) for r in RECORDS]
    for point, r in zip(points, RECORDS, strict=True):
        circle = point.find(f"{SVG}circle")
        assert circle is not None and circle.get("fill") == ci_chart.COLORS[r["verdict"]]
        title = point.findtext(f"{SVG}title") or ""
        assert f"run {r['run']}" in title and r["reason"] in title
    labels = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")
              if t.get("class") == "ci-label"]
    assert labels == ["#1 · 2025-11-25", "TensorFlow 2.14.0→2.21.0",
                      "#2 · 2025-11-26", "oneDNN 3.4→3.7.0",
                      "#3 · 2025-11-27", "TensorFlow 2.14.0→2.21.0"]


def test_the_whisker_spans_low_to_high() -> None:
    root = ET.fromstring(ci_chart.render(ci_chart.rows(RECORDS)))
    one = next(e for e in root.iter(f"{SVG}line") if e.get("class") == "no-speedup")
    assert one.get("stroke-dasharray")  # dashed, at 1.0x
    y_one = float(one.get("y1", ""))
    for point, r in zip(_points(root), RECORDS, strict=True):
        now = r["speedup_now"]
        cy = float(point.find(f"{SVG}circle").get("cy", ""))  # type: ignore[union-attr]
        scale = (cy - y_one) / (now["ratio"] - 1.0)  # pixels per 1.0x (negative: up)

        def at(value: float, _one: float = y_one, _scale: float = scale) -> float:
            return _one + (value - 1.0) * _scale

        whisker = next(e for e in point.iter(f"{SVG}line") if e.get("class") == "ci-interval")
        assert whisker.get("x1") == whisker.get("x2") == point.find(  # type: ignore[union-attr]
            f"{SVG}circle").get("cx")
        assert math.isclose(float(whisker.get("y1", "")), at(now["high"]), abs_tol=0.2)
        assert math.isclose(float(whisker.get("y2", "")), at(now["low"]), abs_tol=0.2)


def test_text_is_escaped() -> None:
    evil = record(1, label='<script>alert("x")</script>', verdict='ok" onload="x')
    evil["reason"] = "a & b <b>bold</b>"
    evil["host_class"] = "<img src=x>"
    svg = ci_chart.render(ci_chart.rows([evil]))
    assert "<script>" not in svg and "<b>" not in svg and "<img" not in svg
    assert "&lt;script&gt;" in svg
    point = _points(svg)[0]  # parses: the attribute's quote was escaped too
    assert point.get("data-verdict") == 'ok" onload="x'
    assert "unknown" in point.get("class", "")  # an unknown verdict gets no colour of its own
    assert "a & b <b>bold</b>" in (point.findtext(f"{SVG}title") or "")


def test_rows_read_defensively() -> None:
    rows = ci_chart.rows([{"run": True, "speedup_now": {"ratio": 1.05}, "changed": []},
                          {"changed": [{"label": "kernel", "then": "6.1"}]},
                          {"speedup_now": {"ratio": 1e300, "low": -1e300, "high": 1e301}},
                          {"speedup_now": {"ratio": -2.0}, "verdict": "ok"}])
    assert [(r.run, r.speedup, r.changed, r.kind) for r in rows] == [
        (1, "1.05x", "no change", "unknown"), (2, "not measured", "kernel 6.1→?", "unknown"),
        (3, "not measured", "", "unknown"), (4, "not measured", "", "ok")]
    root = ET.fromstring(ci_chart.render(rows))
    unmeasured = [g for g in root.iter(f"{SVG}g") if "unmeasured" in g.get("class", "")]
    assert [g.get("data-run") for g in unmeasured] == ["2", "3", "4"]
    assert ci_chart.render([]) == ""
    assert ci_chart.queued(None) == "" and ci_chart.queued({}) == \
        "A ci run is queued for a worker."


def test_the_chart_shows_the_latest_runs() -> None:
    many = [record(n) for n in range(1, ci_chart.MAX_RUNS + 6)]
    svg = ci_chart.render(ci_chart.rows(many))
    points = _points(svg)
    assert len(points) == ci_chart.MAX_RUNS and points[-1].get("data-run") == str(len(many))
    assert f"the latest {ci_chart.MAX_RUNS} of {len(many)}" in svg
