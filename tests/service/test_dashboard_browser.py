"""The dashboard in a real browser (Debian's headless Chromium, driven by Selenium) against a
real ``tuner serve`` process over a finished study: the studies page, and the study page's
best-knobs table and trial chart, checked against the API; screenshots are saved."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_studies_and_study_pages(finished_storage: str, serve: Callable[..., str],
                                 browser: object) -> None:
    from selenium.webdriver.common.by import By

    url = serve("--storage", finished_storage, "--insecure-local")
    api = httpx.get(f"{url}/studies/finished", timeout=30).json()
    trials = httpx.get(f"{url}/studies/finished/trials", timeout=30).json()["items"]
    best = api["best_config"]
    ARTIFACTS.mkdir(exist_ok=True)

    browser.get(f"{url}/ui")  # type: ignore[attr-defined]
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-study="finished"]')  # type: ignore[attr-defined]
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "finished" and cells[3] == "done" and cells[4] == "10 / 10"
    assert cells[5] == best["label"] and cells[5].startswith(f"{best['value']:.4g}")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-studies.png"))  # type: ignore[attr-defined]

    row.find_element(By.LINK_TEXT, "finished").click()
    table = browser.find_element(By.ID, "best-knobs")  # type: ignore[attr-defined]
    shown = {r.get_attribute("data-knob"): r.find_element(By.CLASS_NAME, "value").text
             for r in table.find_elements(By.CSS_SELECTOR, "tbody tr[data-knob]")}
    assert shown == {k: str(v) for k, v in best["knobs"].items()}
    ratio = browser.find_element(  # type: ignore[attr-defined]
        By.CSS_SELECTOR, '#speedups tr[data-baseline="defaults"] .ratio').text
    assert ratio == f"{best['speedups']['defaults']['ratio']:.2f}x"
    assert browser.find_element(By.ID, "launch").text == best["launch"]  # type: ignore[attr-defined]

    chart = browser.find_element(By.ID, "trials-chart")  # type: ignore[attr-defined]
    points = chart.find_elements(By.CSS_SELECTOR, ".trial.complete.single-run")
    complete = {t["number"]: t["value"] for t in trials
                if t["state"] == "complete" and t["duplicate_of"] is None}
    assert {int(p.get_attribute("data-trial")): float(p.get_attribute("data-value"))
            for p in points} == complete
    reused = {int(p.get_attribute("data-trial")): int(p.get_attribute("data-duplicate-of"))
              for p in chart.find_elements(By.CSS_SELECTOR, ".trial.reused")}
    assert reused == {t["number"]: t["duplicate_of"] for t in trials
                      if t["state"] == "complete" and t["duplicate_of"] is not None}
    assert len(chart.find_elements(By.CSS_SELECTOR, ".trial.pruned")) == sum(
        t["state"] == "pruned" for t in trials)
    best_line = chart.find_element(By.CSS_SELECTOR, "polyline.best-so-far")
    assert float(best_line.get_attribute("data-max")) == max(complete.values())
    # the confirmation's intervals, drawn beside the search, and the one "best" label
    entries = {e["label"]: e for e in api["confirmation"]["entries"]}
    bars = chart.find_elements(By.CSS_SELECTOR, "g.confirmed")
    assert len(bars) == len(entries) and all(b.is_displayed() for b in bars)
    for bar in bars:
        entry = entries[bar.get_attribute("data-label")]
        assert [float(bar.get_attribute(f"data-{k}")) for k in ("low", "mean", "high")] == [
            entry["throughput"][k] for k in ("low", "mean", "high")]
        assert bar.size["width"] >= 10  # the caps of the error bar are drawn
        if "defaults" in entry["speedups"]:
            assert float(bar.get_attribute("data-ratio")) == entry["speedups"]["defaults"][
                "ratio"]
    answer = chart.find_element(By.CSS_SELECTOR, "g.answer")
    assert (int(answer.get_attribute("data-trial")), float(answer.get_attribute("data-value")),
            float(answer.get_attribute("data-low")), float(answer.get_attribute("data-high"))
            ) == (best["trial"], best["value"], best["interval"]["low"],
                  best["interval"]["high"])
    assert f"best {best['value']:.4g}\n" in answer.text and "\nconfirmed\n" in answer.text
    baselines = {b.get_attribute("data-role"): float(b.get_attribute("data-value"))
                 for b in chart.find_elements(By.CSS_SELECTOR, "line.baseline")}
    assert baselines == {role: b["value"] for role, b in api["baselines"].items()}
    assert chart.size["width"] > 500 and chart.size["height"] > 200  # really drawn

    from selenium.webdriver.support.ui import WebDriverWait

    button = browser.find_element(By.ID, "copy-launch")  # type: ignore[attr-defined]
    button.click()  # the copy resolves a clipboard promise: its mark appears a little later
    WebDriverWait(browser, 10).until(lambda _: button.get_attribute("data-copied") == "yes")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-study.png"))  # type: ignore[attr-defined]

    browser.get(f"{url}/optuna/dashboard")  # type: ignore[attr-defined]
    assert "Optuna Dashboard" in browser.title  # type: ignore[attr-defined]


def test_screenshot_files_are_pngs() -> None:
    for name in ("dashboard-studies.png", "dashboard-study.png"):
        path = ARTIFACTS / name
        if path.exists():
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_embedded_service_runs_a_submitted_study(serve: Callable[..., str],
                                                 tmp_path: Path) -> None:
    """`tuner serve` alone: an embedded database and an in-process worker take a study
    submitted over HTTP (as the README's curl does) through to a confirmed best."""
    from tests.conftest import FAKE_WORKLOAD, PYTHON

    url = serve("--insecure-local", env={"TUNER_DEFAULT_STORAGE":
                                         f"sqlite:///{tmp_path / 'embedded.db'}",
                                         "TUNER_WORKER_POLL_SECONDS": "0.3"})
    body = (f"name: embedded\nworkload: {{command: [{PYTHON}, {FAKE_WORKLOAD}], "
            f"parser: protocol}}\nknobs: {{threads: {{flag: --threads, low: 1, high: 4}}}}\n"
            f"budget: {{n_trials: 6}}\nsampler: {{name: grid}}\nnoise: {{runs: 2}}\n"
            f"confirm: {{top: 1, rounds: 2, max_rounds: 2}}\n")
    created = subprocess.run(["curl", "-s", "-X", "POST", "--data-binary", body, "-H",
                              "Content-Type: application/yaml", f"{url}/studies"],
                             capture_output=True, text=True, timeout=30)
    assert '"status":"queued"' in created.stdout.replace(" ", ""), created.stdout
    for _ in range(300):
        status = httpx.get(f"{url}/studies/embedded", timeout=10).json()["status"]
        if status == "done":
            break
        import time

        time.sleep(0.3)
    assert status == "done"
    best = httpx.get(f"{url}/studies/embedded/best", timeout=10).json()
    assert best["confirmed"] and best["knobs"]["threads"] == 3


def test_study_page_says_both_baselines_failed(serve: Callable[..., str], tmp_path: Path,
                                               browser: object) -> None:
    """A program that needs its flag fails both baselines: the study page says so, names each
    with its reason and the last lines of its output, and claims no speedup."""
    from selenium.webdriver.common.by import By

    from tests.test_failed_baselines import ERRORS, STATEMENT_BOTH, run_picky

    storage = f"sqlite:///{tmp_path / 'picky.db'}"
    run_picky(tmp_path, storage, "picky", "both", budget={"n_trials": 3}, confirm={"top": 0})
    url = serve("--storage", storage, "--insecure-local")
    api = httpx.get(f"{url}/studies/picky", timeout=30).json()
    browser.get(f"{url}/ui/studies/picky")  # type: ignore[attr-defined]
    statement = browser.find_element(By.ID, "baseline-statement")  # type: ignore[attr-defined]
    assert statement.text == STATEMENT_BOTH == api["baseline_statement"]
    assert statement.is_displayed()
    shown = {b.get_attribute("data-baseline"): b for b in browser.find_elements(  # type: ignore[attr-defined]
        By.CSS_SELECTOR, "#failed-baselines .failed-baseline")}
    assert list(shown) == ["defaults", "vendor"]
    for role, block in shown.items():
        assert block.find_element(By.CLASS_NAME, "reason").text == api["failed_baselines"][
            role]["reason"] == "exited with status 1"
        tail = block.find_element(By.CSS_SELECTOR, "pre.tail").text
        assert tail.splitlines() == api["failed_baselines"][role]["tail"]
        assert tail.splitlines()[-1] == ERRORS["both"]
    best = browser.find_element(By.ID, "best-value").text  # type: ignore[attr-defined]
    assert "with nothing to compare against (both baselines failed)" in best
    assert browser.find_element(  # type: ignore[attr-defined]
        By.CSS_SELECTOR, "#speedups tr.no-speedup").text == (
        "no speedup claimed: no baseline ran, so there is nothing to compare against")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-failed-baselines.png"))  # type: ignore[attr-defined]
