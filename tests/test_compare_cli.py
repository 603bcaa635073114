"""``tuner compare A B`` on two real studies of the fake workload, tuned into one SQLite
database by a real ``tuner tune``: the table of the two bests, their knob differences, and
a paired interleaved confirmation, run as a real ``tuner compare`` process, whose interval
holds the ratio the program is built to have (its throughput is a known function of its
flags and environment: ``tests/programs/fake_workload.py``); the record kept in both
studies; the API route and the dashboard page that show it; the clear errors and exit
statuses.

The runs are noisy (1%) but seeded (``FAKE_SEED``, ``FAKE_COUNTER``): the same runs, the
same interval, every time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ARTIFACTS, FAKE_WORKLOAD, PYTHON, final_throughput
from tuner.cli import main
from tuner.service.app import create_app
from tuner.settings import Settings
from tuner.store.attributes import COMPARISONS, HOST_CLASS

STUDIES = """
studies:
- name: alpha
  description: the thread count only
  workload: &workload
    command: [{python}, {workload}, --intervals, "2"]
    parser: protocol
    env: {{FAKE_NOISE: "0.01", FAKE_SEED: "3", FAKE_COUNTER: "{counter}"}}
  knobs:
    threads: {{flag: --threads, low: 1, high: 2}}
  budget: {{n_trials: 4}}
  sampler: {{name: grid, seed: 1}}
  noise: {{runs: 2}}
  confirm: {{top: 1, rounds: 2, max_rounds: 2}}
- name: beta
  description: more threads, and the OpenMP block time
  workload: *workload
  knobs:
    threads: {{flag: --threads, low: 2, high: 3}}
    KMP_BLOCKTIME: [0, 1]
  screening: off
  budget: {{n_trials: 6}}
  sampler: {{name: grid, seed: 1}}
  noise: {{runs: 2}}
  confirm: {{top: 1, rounds: 2, max_rounds: 2}}
"""


def tuner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Both studies tuned (one ``tuner tune``), then ``tuner compare alpha beta``: the
    storage and the compare process."""
    workdir = tmp_path_factory.mktemp("compare")
    storage = f"sqlite:///{workdir / 'studies.db'}"
    path = workdir / "studies.yaml"
    path.write_text(STUDIES.format(python=PYTHON, workload=FAKE_WORKLOAD,
                                   counter=workdir / "runs"))
    tuned = tuner("tune", str(path), "--storage", storage, "--quiet", cwd=workdir)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    proc = tuner("compare", "alpha", "beta", "--storage", storage, "--rounds", "4",
                 "--max-rounds", "12", cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return storage, proc


def noiseless(knobs: dict[str, Any]) -> float:
    """The program's throughput under ``knobs``, without noise: what it is built to have."""
    env = {"PATH": os.environ["PATH"]}
    if "KMP_BLOCKTIME" in knobs:
        env["KMP_BLOCKTIME"] = str(knobs["KMP_BLOCKTIME"])
    out = subprocess.run([PYTHON, FAKE_WORKLOAD, "--intervals", "2", "--threads",
                          str(knobs.get("threads", 1))], env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return final_throughput(out)


def test_compare_two_real_studies_confirms_the_true_ratio(
        compared: tuple[str, subprocess.CompletedProcess[str]]) -> None:
    storage, proc = compared
    out = proc.stdout
    print(out)  # the README's excerpt comes from here
    assert out.startswith("Comparing alpha (a) and beta (b): throughput, higher is better")
    assert re.search(r"^best\s+\S+ \[\S+, \S+\]\s+\S+ \[\S+, \S+\]$", out, re.M), out
    assert re.search(r"^basis\s+confirmed over 2 interleaved rounds\s+confirmed over 2 "
                     r"interleaved rounds$", out, re.M), out
    assert re.search(r"^workload\s+python fake_workload.py --intervals 2\s+the same$", out,
                     re.M), out
    assert "Knobs of the two bests: 2 differ" in out
    assert re.search(r"^  KMP_BLOCKTIME\s+-\s+1\s+only b: not a knob of a \(alpha\)$", out,
                     re.M), out
    assert re.search(r"^  threads\s+2\s+3\s+different$", out, re.M), out
    assert "Workload: the same in both studies" in out
    assert "; this machine is of that class" in out
    found = re.search(r"^Paired confirmation \(measured now\): beta over alpha: "
                      r"([\d.]+)x \[([\d.]+), ([\d.]+)\] \(95% interval, (\d+) paired "
                      r"interleaved rounds\) — beta's best is measurably better$", out, re.M)
    assert found, out
    ratio, low, high = (float(found.group(i)) for i in (1, 2, 3))
    truth = noiseless({"threads": 3, "KMP_BLOCKTIME": 1}) / noiseless({"threads": 2})
    assert low <= truth <= high, (truth, low, high)
    assert abs(ratio / truth - 1) < 0.02 and 1.0 < low  # 1.068x, measurably
    assert "after 4 rounds: beta over alpha" in proc.stderr  # the progress of the looks
    # the record, kept in both studies
    records = [COMPARISONS.get(optuna.load_study(study_name=name, storage=storage))
               for name in ("alpha", "beta")]
    assert records[0] == records[1] and len(records[0]) == 1
    kept = records[0][0]
    assert kept["a"]["study"] == "alpha" and kept["b"]["knobs"] == {"threads": 3,
                                                                     "KMP_BLOCKTIME": 1}
    assert kept["rounds"] == int(found.group(4)) == len(kept["a"]["values"])
    assert (kept["low"], kept["high"]) == pytest.approx((low, high), abs=5e-4)


def test_the_stored_confirmation_without_running_anything(
        compared: tuple[str, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    storage, _ = compared
    proc = tuner("compare", "beta", "alpha", "--storage", storage, "--no-confirm", "--json",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["confirmation"] is None and data["no_confirmation"] == "--no-confirm"
    stored = data["comparison"]["confirmations"]
    assert len(stored) == 1 and stored[0]["a"]["study"] == "beta"  # read from b's side
    assert stored[0]["verdict"] == "loss" and stored[0]["high"] < 1.0  # alpha over beta


@pytest.fixture
def client(compared: tuple[str, subprocess.CompletedProcess[str]]) -> Iterator[TestClient]:
    storage, _ = compared
    with TestClient(create_app(settings=Settings(api_token="write"), storage_url=storage)
                    ) as test:
        yield test


def test_the_api_and_the_dashboard_show_the_comparison(client: TestClient) -> None:
    body = client.get("/studies/alpha/compare/beta").json()
    assert body["same_workload"] and body["same_host_class"] and body["comparable"]
    assert [(k["knob"], k["status"], k["a"], k["b"]) for k in body["knobs"]] == [
        ("KMP_BLOCKTIME", "only b", None, 1), ("threads", "different", 2, 3)]
    assert body["a"]["answer"]["confirmed"] and body["blockers"] == []
    latest = body["latest"]
    assert latest["verdict"] == "win" and latest["low"] > 1.0
    assert client.get("/studies/alpha/compare/nothing").status_code == 404
    itself = client.get("/studies/alpha/compare/alpha").json()
    assert {k["status"] for k in itself["knobs"]} == {"same"} and itself["latest"] is None
    assert client.get("/studies/alpha/compare/b%20c").status_code == 422
    page = client.get("/ui/compare", params={"a": "alpha", "b": "beta"})
    assert page.status_code == 200
    assert 'id="confirmation"' in page.text and "beta over alpha: " in page.text
    assert 'data-knob="KMP_BLOCKTIME" data-status="only b"' in page.text
    assert client.get("/ui/compare", params={"a": "alpha", "b": "<script>"}).status_code == 422
    assert 'action="/ui/compare"' in client.get("/ui").text
    picker = client.get("/ui/compare")  # without both: the form that picks them
    assert picker.status_code == 200 and '<option value="beta">' in picker.text


def test_errors_are_one_line_and_an_exit_status(
        compared: tuple[str, subprocess.CompletedProcess[str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    storage, _ = compared
    copy = tmp_path / "copy.db"
    shutil.copy(storage.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    optuna.create_study(study_name="empty", storage=url)
    assert main(["compare", "alpha", "gone", "--storage", url]) == 1
    assert "tuner: no study named 'gone'" in capsys.readouterr().err
    assert main(["compare", "alpha", "empty", "--storage", url]) == 1
    assert "study 'empty' has no completed trial yet" in capsys.readouterr().err
    assert main(["compare", "alpha", "al/pha", "--storage", url]) == 2
    assert "is not a study name" in capsys.readouterr().err
    assert main(["compare", "alpha", "alpha", "--storage", url]) == 2
    # measured on another kind of machine: nothing runs, and it says why
    HOST_CLASS.put(optuna.load_study(study_name="beta", storage=url), "64c8n-elsewhere")
    assert main(["compare", "alpha", "beta", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "No paired confirmation ran: a was measured on host class " in out
    assert ", b on 64c8n-elsewhere (" in out
    assert "a ratio of values measured on different machines is not a speedup" in out
    assert "(--force measures both here anyway)" in out
    assert "Stored confirmation (" in out  # the earlier one, still shown


@pytest.mark.browser
def test_the_compare_view_in_a_real_browser(
        compared: tuple[str, subprocess.CompletedProcess[str]], serve: Any,
        browser: Any) -> None:
    """Headless Chromium against a real ``tuner serve``: the studies page's picker leads to
    the compare view, whose bests, knob differences and stored confirmation are the API's."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    storage, _ = compared
    url = serve("--storage", storage, "--insecure-local")
    api = httpx.get(f"{url}/studies/alpha/compare/beta", timeout=30).json()
    browser.get(f"{url}/ui")
    form = browser.find_element(By.ID, "compare")
    Select(form.find_element(By.NAME, "a")).select_by_value("alpha")
    Select(form.find_element(By.NAME, "b")).select_by_value("beta")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#knob-diff tr[data-knob]"))
    assert "/ui/compare?a=alpha&b=beta" in browser.current_url
    rows = {r.get_attribute("data-knob"): r.get_attribute("data-status") for r in
            browser.find_elements(By.CSS_SELECTOR, "#knob-diff tr[data-knob]")}
    assert rows == {k["knob"]: k["status"] for k in api["knobs"]}
    values = [float(c.get_attribute("data-value")) for c in
              browser.find_elements(By.CSS_SELECTOR, "#bests td.value")]
    assert values == pytest.approx([api["a"]["answer"]["value"], api["b"]["answer"]["value"]])
    confirmation = browser.find_element(By.ID, "confirmation")
    assert float(confirmation.get_attribute("data-low")) == pytest.approx(api["latest"]["low"])
    assert confirmation.get_attribute("data-verdict") == api["latest"]["verdict"]
    assert "beta over alpha" in confirmation.text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-compare.png"))
