"""Two studies side by side (``tuner.results.comparison``), on studies built in memory: the
knob differences of the two bests, the clear errors (no completed trial, different metrics),
what stands in the way of a paired confirmation (another host class, another workload, this
machine), stored confirmations read from either side, and the paired race itself
(``tuner.study.comparison_race``) on a backend whose true ratio is known."""

from __future__ import annotations

import math
import random
from typing import Any

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from tests.conftest import FAKE_WORKLOAD, PYTHON
from tuner.execution.backend import Backend, RunRequest
from tuner.execution.outcome import OnReading, Outcome, Status
from tuner.host import Host
from tuner.results.comparison import ComparisonError, Here, compare, oriented
from tuner.results.comparison_render import render, statement
from tuner.settings import get_settings
from tuner.spec.models import StudySpec
from tuner.store import attributes
from tuner.study.comparison_race import PairBench, PairOptions, Stored

COMMAND = [PYTHON, FAKE_WORKLOAD, "--intervals", "2"]
KNOBS: dict[str, Any] = {"threads": {"flag": "--threads", "low": 1, "high": 4},
                         "KMP_BLOCKTIME": [0, 1]}


def make_study(storage: optuna.storages.BaseStorage, name: str, best: dict[str, Any] | None,
               **options: Any) -> optuna.Study:
    """A finished study: the defaults (value 100), then one search trial that applied
    ``best`` (its best: 150, or 50 for a minimized metric; no search trial when None).
    ``options``: ``knobs`` (its study file's), ``metric``, ``direction``, ``unit``,
    ``host_class``, ``command``, ``complete`` (False: the trials are still running)."""
    direction = options.get("direction", "maximize")
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    spec = StudySpec.model_validate({
        "name": name, "workload": {"command": options.get("command", COMMAND),
                                   "parser": "protocol"},
        "knobs": options.get("knobs", KNOBS),
        "objective": {"metric": options.get("metric", "throughput"), "direction": direction},
        "confirm": {"rounds": 4, "max_rounds": 12}})
    attributes.put_spec(study, spec, f"name: {name}\n")
    attributes.UNIT.put(study, options.get("unit", "items/s"))
    attributes.HOST_CLASS.put(study, options.get("host_class", "2c1n-test"))
    attributes.FINGERPRINT.put(study, {"cpu_model": "Test CPU"})
    state = TrialState.COMPLETE if options.get("complete", True) else TrialState.RUNNING
    trials: list[tuple[str, dict[str, Any], float]] = [("defaults", {}, 100.0)]
    if best is not None:
        trials.append(("search", best, 150.0 if direction == "maximize" else 50.0))
    for role, applied, value in trials:
        params = {"threads": applied["threads"]} if "threads" in applied else {}
        study.add_trial(optuna.trial.create_trial(
            state=state, value=value if state == TrialState.COMPLETE else None,
            params=params, distributions={k: IntDistribution(1, 4) for k in params},
            user_attrs={**attributes.ROLE.entry(role), "applied": applied,
                        "samples": [value]}))
    return study


@pytest.fixture
def storage() -> optuna.storages.BaseStorage:
    return optuna.storages.InMemoryStorage()


def test_the_knob_differences_of_the_two_bests(storage: optuna.storages.BaseStorage) -> None:
    a = make_study(storage, "alpha", {"threads": 2, "KMP_BLOCKTIME": 0},
                   knobs={"threads": KNOBS["threads"], "KMP_BLOCKTIME": [0, 1],
                          "OMP_NUM_THREADS": [1, 2]})
    b = make_study(storage, "beta", {"threads": 2, "OMP_NUM_THREADS": 4, "KMP_BLOCKTIME": 1})
    comparison = compare(a, b)
    rows = {r.knob: (r.status, r.a, r.b, r.note) for r in comparison.knobs}
    assert rows == {
        "KMP_BLOCKTIME": ("different", 0, 1, ""),
        "OMP_NUM_THREADS": ("only b", None, 4, "a's best leaves it at its default"),
        "threads": ("same", 2, 2, "")}
    assert [r.knob for r in comparison.knobs][-1] == "threads"  # the same come last
    assert comparison.same_workload and comparison.same_host_class
    assert comparison.incomparable is None and comparison.blockers() == []
    reverse = {r.knob: r.note for r in compare(b, a).knobs}
    assert reverse["OMP_NUM_THREADS"] == "b's best leaves it at its default"
    c = make_study(storage, "gamma", {"threads": 3}, knobs={"threads": KNOBS["threads"]})
    only = {r.knob: r.note for r in compare(c, b).knobs if r.status == "only b"}
    assert only == {"OMP_NUM_THREADS": "not a knob of a (gamma)",
                    "KMP_BLOCKTIME": "not a knob of a (gamma)"}


def test_a_study_without_a_completed_trial_is_a_clear_error(
        storage: optuna.storages.BaseStorage) -> None:
    a = make_study(storage, "alpha", {"threads": 2})
    b = make_study(storage, "running", {"threads": 3}, complete=False)
    with pytest.raises(ComparisonError, match="study 'running' has no completed trial yet"):
        compare(a, b)


def test_different_metrics_are_not_compared_but_the_knobs_are(
        storage: optuna.storages.BaseStorage) -> None:
    a = make_study(storage, "alpha", {"threads": 2})
    b = make_study(storage, "latency", {"threads": 3}, metric="latency",
                   direction="minimize", unit="ms")
    comparison = compare(a, b)
    assert comparison.incomparable == "a measures 'throughput', b measures 'latency'"
    blockers = comparison.blockers()
    assert len(blockers) == 1 and not blockers[0].forceable
    assert "a ratio of the two is meaningless" in blockers[0].reason
    assert [(r.knob, r.status) for r in comparison.knobs] == [("threads", "different")]
    text = render(comparison, why_not=blockers[0].reason)
    assert "Not comparable: a measures 'throughput', b measures 'latency'" in text
    assert "  threads  2  3  different" in text
    same_metric = make_study(storage, "slower", {"threads": 3}, direction="minimize")
    assert compare(a, same_metric).incomparable == ("a's throughput is to maximize, b's to "
                                                    "minimize")


def test_what_stands_in_the_way_of_a_paired_confirmation(
        storage: optuna.storages.BaseStorage) -> None:
    a = make_study(storage, "alpha", {"threads": 2})
    b = make_study(storage, "beta", {"threads": 3}, host_class="4c2n-other",
                   command=[*COMMAND[:-1], "3"])
    comparison = compare(a, b, here=Here(a="2c1n-test", b="2c1n-test"))
    reasons = [(x.reason, x.forceable) for x in comparison.blockers()]
    assert reasons[0][0].startswith("a was measured on host class 2c1n-test (Test CPU), b "
                                    "on 4c2n-other (Test CPU): a ratio of values measured "
                                    "on different machines is not a speedup")
    assert reasons[1][0] == ("this machine is host class 2c1n-test, not the one the studies "
                             "were measured on: run `tuner compare` on a machine of that "
                             "class")
    assert reasons[2][0] == ("the workloads differ (workload.command[3]: 2 (a) vs 3 (b)): the "
                             "ratio would compare different work, not settings")
    assert all(forceable for _, forceable in reasons)
    cannot = compare(a, a, here=Here(problem="no runtime named 'x'"))
    assert [(x.reason, x.forceable) for x in cannot.blockers()] == [
        ("this machine cannot run them: no runtime named 'x'", False)]
    elsewhere = compare(a, make_study(storage, "b2", {"threads": 3}),
                        here=Here(a="8c2n-here", b="8c2n-here"))
    assert [x.reason for x in elsewhere.blockers()] == [
        "this machine is host class 8c2n-here, not the one the studies were measured on: "
        "run `tuner compare` on a machine of that class"]


def test_a_stored_confirmation_reads_the_same_from_either_side(
        storage: optuna.storages.BaseStorage) -> None:
    a = make_study(storage, "alpha", {"threads": 2})
    b = make_study(storage, "beta", {"threads": 3})
    record = {"id": "1", "at": 1.0, "a": {"study": "alpha", "values": [1.0]},
              "b": {"study": "beta", "values": [2.0]}, "ratio": 1.25, "low": 1.2,
              "high": 1.3, "rounds": 6, "verdict": "win", "precision": {"target": 0.02}}
    attributes.COMPARISONS.put(a, [record, {"id": "2", "a": {"study": "alpha"},
                                            "b": {"study": "other"}}])
    attributes.COMPARISONS.put(b, [record])
    forward = compare(a, b)
    assert forward.stored == [record]
    assert statement(record, forward) == (
        "beta over alpha: 1.250x [1.200, 1.300] (95% interval, 6 paired interleaved rounds) "
        "— beta's best is measurably better")
    backward = compare(b, a).stored
    assert len(backward) == 1
    flipped = backward[0]
    assert flipped["a"]["study"] == "beta" and flipped["verdict"] == "loss"
    assert (flipped["ratio"], flipped["low"], flipped["high"]) == pytest.approx(
        (1 / 1.25, 1 / 1.3, 1 / 1.2))
    assert oriented(flipped, "alpha")["ratio"] == pytest.approx(1.25)


class KnownRatio(Backend):
    """Each run's value: ``100 * threads`` (a throughput) or ``10 / threads`` (a latency),
    times a seeded random factor with a 2% spread: the true ratio of two settings is known."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.runs = 0

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        self.runs += 1
        threads = int(request.applied["threads"])
        base = 100.0 * threads if request.metric == "throughput" else 10.0 / threads
        value = base * math.exp(self.rng.gauss(0.0, 0.02))
        return Outcome(status=Status.OK, reason="", metrics={request.metric: value})


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_paired_race_finds_the_true_ratio_and_keeps_it_in_both_studies(
        tmp_path: Any, local_host: Host, direction: str) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    storage = optuna.storages.RDBStorage(url)
    metric = "throughput" if direction == "maximize" else "latency"
    knobs = {"threads": KNOBS["threads"]}
    a = make_study(storage, "alpha", {"threads": 2}, knobs=knobs, metric=metric,
                   direction=direction)
    b = make_study(storage, "beta", {"threads": 3}, knobs=knobs, metric=metric,
                   direction=direction)
    backend = KnownRatio()
    bench = PairBench(local_host, get_settings(), backend=backend)
    comparison = compare(a, b)
    said: list[str] = []
    record = bench.confirm(comparison, Stored(study=a, storage_url=url),
                           Stored(study=b, storage_url=url),
                           options=PairOptions(rounds=4, max_rounds=12), say=said.append)
    assert record["low"] <= 1.5 <= record["high"], record  # 3 threads over 2, either goal
    assert record["verdict"] == "win" and record["precision"]["settled"]
    assert record["rounds"] in (4, 6, 9, 12) and backend.runs == 2 * record["rounds"]
    assert len(record["a"]["values"]) == record["rounds"]
    assert record["a"]["knobs"] == {"threads": 2} and record["b"]["trial"] == 1
    assert record["direction"] == direction
    assert record["measured_on"] == bench.here(a, b).a
    assert said[0].startswith("confirming alpha's best (trial 1) against beta's best")
    for study in (a, b):
        assert [r["id"] for r in attributes.COMPARISONS.get(study)] == [record["id"]]
    assert compare(a, b).latest == record


def test_a_race_whose_runs_fail_says_so(tmp_path: Any, local_host: Host) -> None:
    class Failing(Backend):
        def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
            return Outcome(status=Status.FAILED, reason="exit status 1")

    url = f"sqlite:///{tmp_path / 'race.db'}"
    storage = optuna.storages.RDBStorage(url)
    a = make_study(storage, "alpha", {"threads": 2})
    b = make_study(storage, "beta", {"threads": 3})
    comparison = compare(a, b)
    record = PairBench(local_host, get_settings(), backend=Failing()).confirm(
        comparison, Stored(study=a, storage_url=url), Stored(study=b, storage_url=url),
        options=PairOptions(rounds=2, max_rounds=4))
    assert record["ratio"] is None and record["verdict"] == "failed"
    assert record["rounds"] == 2  # nothing could be paired: more rounds buy nothing
    assert record["failures"] == "alpha: exit status 1; beta: exit status 1"
    assert statement(record, comparison).startswith("no ratio: fewer than 2 rounds where "
                                                    "both runs succeeded in 2 rounds")


def test_the_compare_page_escapes_what_the_studies_hold(tmp_path: Any) -> None:
    """Knob values and command arguments are the studies' own text: the page shows them as
    text, never as markup (Jinja's autoescape)."""
    from fastapi.testclient import TestClient

    from tuner.service.app import create_app
    from tuner.settings import Settings

    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    storage = optuna.storages.RDBStorage(url)
    hostile = "<script>alert(1)</script>"
    make_study(storage, "alpha", {"threads": 2, "FLAGS": hostile})
    make_study(storage, "beta", {"threads": 3}, command=[*COMMAND, f"--tag={hostile}"])
    with TestClient(create_app(settings=Settings(api_token="x"), storage_url=url)) as client:
        page = client.get("/ui/compare", params={"a": "alpha", "b": "beta"})
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        body = client.get("/studies/alpha/compare/beta").json()
        assert any(hostile in d for d in body["workload_differences"])
