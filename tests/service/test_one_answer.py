"""One answer everywhere, on a real finished study (the session's ``finished_storage``): the
CLI's ``tuner list`` and ``tuner best`` (real processes), ``GET /studies``,
``GET /studies/NAME``, ``/best`` and the dashboard page agree on the best configuration and
value; and Optuna's own view of the same database is honest (the defaults trial has no
params, metric names are set, every attribute fits optuna-dashboard, a note holds the
answer)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from tests.serving import TOKENS
from tuner.service.app import create_app
from tuner.settings import Settings
from tuner.store import records
from tuner.store.sampled import SAMPLER_PARAMS, with_sampler_params

READ = {"Authorization": f"Bearer {TOKENS['TUNER_READ_TOKEN']}"}


@pytest.fixture(scope="module")
def client(finished_storage: str) -> Iterator[TestClient]:
    settings = Settings(api_token=TOKENS["TUNER_API_TOKEN"],  # type: ignore[call-arg]
                        admin_token=TOKENS["TUNER_ADMIN_TOKEN"],
                        read_token=TOKENS["TUNER_READ_TOKEN"])
    with TestClient(create_app(settings=settings, storage_url=finished_storage)) as test:
        yield test


def tuner(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tuner.cli", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


class Marks(HTMLParser):
    """The attributes of the page's elements that carry an ``id`` or a ``class``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def by(self, key: str, value: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.found if (a.get(key) or "") == value]


def test_every_surface_gives_the_same_answer(finished_storage: str,
                                             client: TestClient) -> None:
    detail = client.get("/studies/finished", headers=READ).json()
    listed = next(i for i in client.get("/studies", headers=READ).json()["items"]
                  if i["name"] == "finished")
    best = client.get("/studies/finished/best", headers=READ).json()
    answer = detail["answer"]
    assert answer["confirmed"] and answer["low"] <= answer["value"] <= answer["high"]
    entry = next(e for e in detail["confirmation"]["entries"]
                 if e["label"] == detail["confirmation"]["best"])
    assert answer["trial"] == entry["trial"] and answer["value"] == entry["throughput"]["mean"]
    # the API: list, detail, best
    for other in (listed["answer"], detail["best_config"], best):
        assert other["trial"] == answer["trial"] and other["knobs"] == answer["knobs"]
        assert other["value"] == answer["value"]
    assert listed["best"] == detail["best"] == answer["value"]
    assert best["interval"] == {"mean": answer["value"], "low": answer["low"],
                                "high": answer["high"]}
    assert best["label"] == listed["answer"]["label"] == answer["label"]
    # the CLI
    line = next(x for x in tuner("list", "--storage", finished_storage).splitlines()
                if x.startswith("finished:"))
    assert answer["label"] in line
    knobs = " ".join(f"{k}={v}" for k, v in sorted(answer["knobs"].items()))
    assert line.endswith(knobs or "nothing set (the framework defaults)")
    cli = json.loads(tuner("best", "finished", "--storage", finished_storage, "--format",
                           "json"))
    assert (cli["trial"], cli["knobs"], cli["value"], cli["label"]) == (
        answer["trial"], answer["knobs"], answer["value"], answer["label"])
    assert answer["label"] in tuner("best", "finished", "--storage", finished_storage)
    # the dashboard: header, knobs table, and the chart's one "best" label
    page = Marks()
    page.feed(client.get("/ui/studies/finished", headers=READ).text)
    header = page.by("id", "best-value")[0]
    assert (header["data-trial"], float(header["data-value"] or "nan")) == (
        str(answer["trial"]), answer["value"])
    assert float(header["data-low"] or "nan") == answer["low"]
    shown = {a.get("data-knob") for tag, a in page.found if tag == "tr" and a.get("data-knob")}
    assert shown == set(answer["knobs"])
    label = page.by("class", "answer")[0]
    assert (label["data-trial"], float(label["data-value"] or "nan")) == (
        str(answer["trial"]), answer["value"])
    bars = {a["data-label"]: a for a in page.by("class", "confirmed")}
    assert set(bars) == {e["label"] for e in detail["confirmation"]["entries"]}
    assert bars[entry["label"]]["data-best"] == "yes"


def fits(value: Any) -> bool:
    """optuna-dashboard shows the value whole: not cut, and at most 1,024 characters."""
    from optuna_dashboard._serializer import MAX_ATTR_LENGTH, serialize_attrs

    shown = serialize_attrs({"x": value})[0]["value"]
    whole = value if isinstance(value, str) else (
        str(value) if isinstance(value, int | float) and not isinstance(value, bool)
        else json.dumps(value))
    return bool(shown == whole and len(whole) <= MAX_ATTR_LENGTH)


def test_optuna_sees_honest_trials_and_tuners_answer(finished_storage: str,
                                                     client: TestClient) -> None:
    from optuna_dashboard import get_note

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="finished", storage=finished_storage)
    trials = study.get_trials()
    # every attribute fits optuna-dashboard's display whole
    values = [*study.user_attrs.items()] + [kv for t in trials for kv in t.user_attrs.items()]
    assert [k for k, v in values if not fits(v)] == []
    assert any(records.is_part(k) for k, _ in values), "the runs of a trial come in parts"
    # the defaults set nothing and say so; the vendor's params are what it set
    by_role = {t.user_attrs.get("role"): t for t in trials}
    defaults, vendor = by_role["defaults"], by_role["vendor"]
    assert defaults.params == {} and defaults.distributions == {}
    assert set(defaults.system_attrs[SAMPLER_PARAMS]["params"]) == {"threads", "KMP_BLOCKTIME"}
    applied = records.get(vendor.user_attrs, "applied")
    assert vendor.params and all(applied[k] == v for k, v in vendor.params.items())
    # the sampler (and knob importance) still see the defaults at the runtime's own values
    seen = {t.number: t for t in with_sampler_params(study).get_trials()}
    assert seen[defaults.number].params == defaults.system_attrs[SAMPLER_PARAMS]["params"]
    # metric names, the answer as an attribute and as the study's note
    assert study.metric_names == ["throughput"]
    answer = client.get("/studies/finished", headers=READ).json()["answer"]
    stored = records.get(study.user_attrs, "tuner_best")
    assert {k: stored[k] for k in ("trial", "value", "low", "high", "knobs", "label")} == {
        k: answer[k] for k in ("trial", "value", "low", "high", "knobs", "label")}
    note = get_note(study)
    assert answer["label"] in note and "tuner_best" in note
    assert all(re.search(rf"\| {k} \| {v} \|", note) for k, v in answer["knobs"].items())
    # optuna-dashboard's own API serves the same: no params for the defaults, the note
    served = client.get(f"/optuna/api/studies/{study._study_id}", headers=READ)
    assert served.status_code == 200, served.text[:200]
    data = served.json()
    row = next(t for t in data["trials"] if t["number"] == defaults.number)
    assert row["params"] == [] and row["fixed_params"] == []
    assert answer["label"] in data["note"]["body"]
    assert data["objective_names"] == ["throughput"]
