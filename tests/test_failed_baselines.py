"""Studies whose baselines fail (issue 11): a program that needs its flag fails both
baselines, neither of which passes it. The report (``tuner best NAME``, the text ``tuner
tune`` ends with), the API and the dashboard say so plainly, name each failed baseline with
its reason and the last lines of its output, and compare the answer only with what ran: with
one baseline failed, the speedups and the answer are stated against the other; with none
ran, the answer is the best search trial "with nothing to compare against" and no speedup
is claimed (never "no configuration beat the baselines").

Real small studies of ``tests/programs/picky_workload.py`` (the fake workload behind a
condition that makes it fail), one database for all of them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.trial import TrialState, create_trial

from tests.conftest import PROGRAMS, PYTHON
from tests.serving import TOKENS
from tuner.host import probe_host
from tuner.results import failed_baselines, render, summarize
from tuner.results.answer import Answer
from tuner.service.app import create_app
from tuner.settings import Settings
from tuner.store.attributes import ROLE, TUNER_BEST
from tuner.testing.specs import study_yaml
from tuner.testing.studies import run_study_file

READ = {"Authorization": f"Bearer {TOKENS['TUNER_READ_TOKEN']}"}
PICKY = str(PROGRAMS / "picky_workload.py")
#: What makes the program fail, per study: both baselines (neither passes ``--threads``),
#: the vendor settings only (``KMP_BLOCKTIME=1``), the defaults only (no ``KMP_BLOCKTIME``).
CONDITIONS = {"both": ["--needs-flag", "--threads"],
              "vendor": ["--fails-when", "KMP_BLOCKTIME=1"],
              "defaults": ["--needs-env", "KMP_BLOCKTIME"]}
#: The last line each failed baseline printed.
ERRORS = {"both": "error: --threads is required (got: --intervals 2)",
          "vendor": "error: KMP_BLOCKTIME=1 is not supported here",
          "defaults": "error: set KMP_BLOCKTIME"}
STATEMENT_BOTH = (
    "Both baselines failed: the framework defaults (trial 0: exited with status 1) and the "
    "vendor settings (trial 1: exited with status 1). No baseline ran: the answer is the best "
    "search trial, with nothing to compare against, and no speedup is claimed.")
STATEMENT_ONE = {
    "vendor": "The vendor settings baseline failed (trial 1: exited with status 1). Speedups "
              "and the answer are stated against the framework defaults only.",
    "defaults": "The framework defaults baseline failed (trial 0: exited with status 1). "
                "Speedups and the answer are stated against the vendor settings only."}


def picky_study(name: str, condition: str, **overrides: Any) -> str:
    """A study of the picky program failing under ``condition`` (a key of CONDITIONS)."""
    # an OpenMP program: the vendor settings set KMP_BLOCKTIME=1 (and OMP_NUM_THREADS,
    # KMP_AFFINITY, the binding); the defaults set nothing (no custom knob has a default)
    workload = {"command": [PYTHON, PICKY, *CONDITIONS[condition], "--intervals", "2"],
                "parser": "protocol", "timeout": 20, "runtime": "openmp"}
    return study_yaml(**{
        "name": name, "workload": workload,
        "knobs": {"threads": {"flag": "--threads", "low": 1, "high": 6},
                  "KMP_BLOCKTIME": [0, 1, 200]},
        "budget": {"n_trials": 6}, "sampler": {"name": "tpe", "seed": 3},
        "noise": {"runs": 2}, "screening": "off",
        "confirm": {"top": 2, "rounds": 2, "max_rounds": 2},
        **overrides})


def run_picky(directory: Path, storage: str, name: str, condition: str,
              **overrides: Any) -> optuna.Study:
    """Run the picky study ``name`` to its end in ``storage``."""
    path = directory / f"{name}.yaml"
    path.write_text(picky_study(name, condition, **overrides))
    host = probe_host()
    return run_study_file(path, host, storage).study


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("failed-baselines")
    url = f"sqlite:///{directory / 'studies.db'}"
    for condition in CONDITIONS:
        run_picky(directory, url, condition, condition)
    # no confirmation: the answer is an unconfirmed search value
    run_picky(directory, url, "both-unconfirmed", "both", budget={"n_trials": 3},
              confirm={"top": 0})
    return url


@pytest.fixture(scope="module")
def client(storage: str) -> Iterator[TestClient]:
    settings = Settings(api_token=TOKENS["TUNER_API_TOKEN"],
                        admin_token=TOKENS["TUNER_ADMIN_TOKEN"],
                        read_token=TOKENS["TUNER_READ_TOKEN"])
    with TestClient(create_app(settings=settings, storage_url=storage)) as test:
        yield test


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def report(storage: str, name: str) -> str:
    """``tuner best NAME``: the study's report, as a real process prints it."""
    out = subprocess.run([sys.executable, "-m", "tuner.cli", "best", name, "--storage",
                          storage], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def tail_lines(condition: str) -> list[str]:
    return ["    | picky workload starting", f"    | {ERRORS[condition]}"]


def test_both_failed_the_report_says_so_and_claims_no_speedup(storage: str) -> None:
    text = report(storage, "both")
    lines = text.splitlines()
    assert STATEMENT_BOTH in lines
    for label, number in (("framework defaults", 0), ("vendor settings", 1)):
        at = lines.index(f"  {label} failed (trial {number}): exited with status 1; the last "
                         "lines of its output:")
        assert lines[at + 1:at + 3] == tail_lines("both")
    summary = summarize(load(storage, "both"))
    assert summary.best is not None and summary.best.role == "search"
    best = next(line for line in lines if line.startswith("Best: "))
    assert best.endswith(", with nothing to compare against (both baselines failed) — trial "
                         f"{summary.best.number}")
    assert "No speedup is claimed: no baseline ran to compare against." in lines
    assert "beat the baselines" not in text and "Speedup over" not in text
    assert "comparison" not in text  # no interval over a comparison that never happened
    assert text.strip() == render(summary, importances=_importance(storage, "both")).strip()


def _importance(storage: str, name: str) -> dict[str, float]:
    from tuner.results import importance

    return importance(load(storage, name))


def test_both_failed_unconfirmed_answer_has_nothing_to_compare_against(storage: str) -> None:
    summary = summarize(load(storage, "both-unconfirmed"))
    answer = summary.answer
    assert answer is not None and not answer.confirmed and answer.role == "search"
    assert answer.basis == ("unconfirmed: the search value of 1 single run, with nothing to "
                            "compare against (both baselines failed)")
    assert summary.speedups == {}
    text = render(summary)
    assert STATEMENT_BOTH in text.splitlines() and "beat the baselines" not in text


@pytest.mark.parametrize("failed", ["vendor", "defaults"])
def test_one_failed_the_report_compares_with_the_other(storage: str, failed: str) -> None:
    ran = "defaults" if failed == "vendor" else "vendor"
    labels = {"defaults": "framework defaults", "vendor": "vendor settings"}
    summary = summarize(load(storage, failed))
    text = render(summary)
    lines = text.splitlines()
    assert STATEMENT_ONE[failed] in lines
    number = 1 if failed == "vendor" else 0
    at = lines.index(f"  {labels[failed]} failed (trial {number}): exited with status 1; the "
                     "last lines of its output:")
    assert lines[at + 1:at + 3] == tail_lines(failed)
    assert any(line.startswith(f"Speedup over {labels[ran]}: ") for line in lines)
    assert f"Speedup over {labels[failed]}" not in text
    assert summary.speedups and set(summary.speedups) == {ran}
    assert summary.answer is not None and summary.answer.confirmed
    assert summary.answer.basis == (f"confirmed over 2 interleaved rounds, against the "
                                    f"{labels[ran]} only (the {labels[failed]} failed)")
    assert "beat the baselines" not in text  # it says which baseline, if any


def test_the_api_names_failed_baselines_with_reason_and_tail(client: TestClient) -> None:
    detail = client.get("/studies/both", headers=READ).json()
    assert detail["baseline_statement"] == STATEMENT_BOTH
    assert {role: (f["trial"], f["label"], f["reason"], f["tail"])
            for role, f in detail["failed_baselines"].items()} == {
        "defaults": (0, "framework defaults", "exited with status 1",
                     ["picky workload starting", ERRORS["both"]]),
        "vendor": (1, "vendor settings", "exited with status 1",
                   ["picky workload starting", ERRORS["both"]])}
    answer = detail["answer"]
    assert answer["failed_baselines"] == ["defaults", "vendor"]
    assert answer["compared_with"] == []
    assert "with nothing to compare against (both baselines failed)" in answer["basis"]
    assert detail["baselines"] == {} and detail["speedup_over_defaults"] is None
    assert detail["best_config"]["speedups"] == {}
    best = client.get("/studies/both/best", headers=READ).json()
    assert best["label"] == answer["label"] and best["speedups"] == {}

    for failed, ran in (("vendor", "defaults"), ("defaults", "vendor")):
        detail = client.get(f"/studies/{failed}", headers=READ).json()
        assert detail["baseline_statement"] == STATEMENT_ONE[failed]
        assert list(detail["failed_baselines"]) == [failed]
        assert detail["failed_baselines"][failed]["tail"][-1] == ERRORS[failed]
        assert list(detail["baselines"]) == [ran]
        assert set(detail["best_config"]["speedups"]) == {ran}
        assert detail["answer"]["compared_with"] == [ran]
        assert detail["answer"]["failed_baselines"] == [failed]
    # a study whose baselines ran has nothing of the kind
    listed = client.get("/studies", headers=READ).json()["items"]
    assert {i["name"] for i in listed} == {*CONDITIONS, "both-unconfirmed"}


def test_the_published_answer_names_failed_baselines(storage: str) -> None:
    study = load(storage, "both")
    stored = TUNER_BEST.get(study)
    assert stored is not None
    assert stored["failed_baselines"] == ["defaults", "vendor"] and stored["compared_with"] == []


def test_the_dashboard_study_page_shows_failed_baselines(client: TestClient) -> None:
    page = client.get("/ui/studies/both", headers=READ).text
    assert f'<p id="baseline-statement" class="warning">{STATEMENT_BOTH}</p>' in page
    for role, number in (("defaults", 0), ("vendor", 1)):
        assert f'<div class="failed-baseline" data-baseline="{role}" data-trial="{number}">' \
            in page
    assert page.count(f'<pre class="tail">picky workload starting\n'
                      f'{ERRORS["both"]}</pre>') == 2
    assert page.count('<span class="reason">exited with status 1</span>') >= 2
    assert "no speedup claimed: no baseline ran, so there is nothing to compare against" in page
    assert "with nothing to compare against (both baselines failed)" in page

    page = client.get("/ui/studies/vendor", headers=READ).text
    assert STATEMENT_ONE["vendor"] in page and ERRORS["vendor"] in page
    assert 'data-baseline="defaults"><td>framework defaults</td>' in page
    assert "no speedup claimed" not in page

    listing = client.get("/ui", headers=READ).text
    assert listing.count("- (the defaults failed)") == 3  # both, both-unconfirmed, defaults


def test_a_baseline_still_to_run_is_not_failed() -> None:
    """Only a baseline none of whose trials completed, and none waits or runs, failed."""
    failed = create_trial(state=TrialState.FAIL, user_attrs=ROLE.entry("defaults"))
    retried = create_trial(state=TrialState.WAITING, user_attrs=ROLE.entry("defaults"))
    vendor = create_trial(state=TrialState.FAIL, user_attrs=ROLE.entry("vendor"))
    vendor_ok = create_trial(state=TrialState.COMPLETE, value=1.0,
                             user_attrs=ROLE.entry("vendor"))
    for number, trial in enumerate((failed, retried, vendor, vendor_ok)):
        trial.number = number
    assert failed_baselines([failed, retried, vendor, vendor_ok]) == {}
    found = failed_baselines([failed, vendor])
    assert [(f.role, f.trial, f.reason, f.tail) for f in found.values()] == [
        ("defaults", 0, "failed", ()), ("vendor", 2, "failed", ())]


def test_answer_basis_when_baselines_ran_is_unchanged() -> None:
    common: dict[str, Any] = {"trial": 3, "role": "search", "knobs": {}, "value": 1.0,
                              "unit": "", "metric": "m"}
    assert Answer(confirmed=True, runs=5, **common).basis == "confirmed over 5 interleaved rounds"
    assert Answer(confirmed=False, runs=2, compared_with=("defaults", "vendor"),
                  **common).basis == ("unconfirmed: the search value of 2 single runs, not "
                                      "compared side by side")
    assert Answer(confirmed=False, runs=2, failed_baselines=("vendor",),
                  compared_with=("defaults",), **common).basis == (
        "unconfirmed: the search value of 2 single runs, not compared side by side with the "
        "framework defaults (the vendor settings failed)")
