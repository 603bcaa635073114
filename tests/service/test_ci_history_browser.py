"""The study page's "CI history" in a real browser (headless Chromium, driven by Selenium)
against a real ``tuner serve`` process: a finished study with three ``tuner ci`` records
(each after a different upgrade; verdicts ok, regressed, improved), its chart and table
checked against ``GET /studies/{name}/ci``; a screenshot is saved."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest

from tests.conftest import ARTIFACTS
from tests.service.test_ci_history import record
from tuner.store.attributes import CI_RUNS

pytestmark = pytest.mark.browser


def _history() -> list[dict[str, Any]]:
    first = record(1, verdict="ok", ratio=1.29, low=1.21, high=1.37, label="kernel",
                   then="6.1.0", now="6.8.0")
    second = record(2, verdict="regressed", ratio=0.93, low=0.88, high=0.98,
                    label="TensorFlow", then="2.14.0", now="2.21.0")
    third = record(3, verdict="improved", ratio=1.41, low=1.33, high=1.48, label="microcode",
                   then="0xa0011d1", now="0xa0011d5")
    second["changed"] = [*second["changed"], {"field": "onednn", "label": "oneDNN",
                                               "then": "3.2.0", "now": "3.7.0"}]
    third["retuned"] = "finished.ci3"
    for index, entry in enumerate((first, second, third)):
        entry["host_class"] = f"28c2n-{'ab12cd34ef56' if index < 2 else 'ff00ee11dd22'}"
    return [first, second, third]


def test_ci_history_chart_and_table(finished_storage: str, serve: Callable[..., str],
                                    browser: object, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    copy = tmp_path / "ci.db"  # the session's finished study stays as it is
    shutil.copy(finished_storage.removeprefix("sqlite:///"), copy)
    storage = f"sqlite:///{copy}"
    study = optuna.load_study(study_name="finished", storage=storage)
    CI_RUNS.put(study, _history())
    url = serve("--storage", storage, "--insecure-local")
    api = httpx.get(f"{url}/studies/finished/ci", timeout=30).json()
    assert [r["verdict"] for r in api["history"]] == ["ok", "regressed", "improved"]
    ARTIFACTS.mkdir(exist_ok=True)

    browser.get(f"{url}/ui/studies/finished")  # type: ignore[attr-defined]
    chart = browser.find_element(By.ID, "ci-chart")  # type: ignore[attr-defined]
    points = chart.find_elements(By.CSS_SELECTOR, "g.ci-point")
    assert [float(p.get_attribute("data-ratio")) for p in points] == [
        r["speedup_now"]["ratio"] for r in api["history"]]
    assert [(float(p.get_attribute("data-low")), float(p.get_attribute("data-high")))
            for p in points] == [(r["speedup_now"]["low"], r["speedup_now"]["high"])
                                 for r in api["history"]]
    assert [p.get_attribute("data-verdict") for p in points] == ["ok", "regressed", "improved"]
    assert all(p.is_displayed() and p.size["height"] > 10 for p in points)  # whiskers drawn
    tops = [p.location["y"] for p in points]
    assert tops[1] > tops[0] > tops[2]  # a higher ratio is drawn higher up
    labels = [t.text for t in chart.find_elements(By.CSS_SELECTOR, "text.ci-label")]
    assert "TensorFlow 2.14.0→2.21.0 +1" in labels and "microcode 0xa0011d1→0xa0011…" in labels
    assert chart.size["width"] > 500 and chart.size["height"] > 200

    table = browser.find_element(By.ID, "ci-history")  # type: ignore[attr-defined]
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 3
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    assert [c[0] for c in cells] == ["1", "2", "3"]
    assert [c[5].split("\n")[0] for c in cells] == ["ok", "regressed", "improved"]
    assert cells[1][3] == "TensorFlow 2.14.0→2.21.0, oneDNN 3.2.0→3.7.0"
    assert cells[1][4] == "0.93x [0.88, 0.98]" and cells[2][2] == "28c2n-ff00ee11dd22"
    assert "re-tuned: finished.ci3" in cells[2][5]
    browser.execute_script(  # type: ignore[attr-defined]
        "document.getElementById('ci').scrollIntoView()")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-ci-history.png"))  # type: ignore[attr-defined]
    assert (ARTIFACTS / "dashboard-ci-history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
