"""``tuner ci`` for real: the command in a fresh process, trials as real subprocesses of a
program whose best settings change with its version (``tests/programs/versioned_workload.py``,
its version in FAKESTACK_VERSION). Every verdict with its exit status, what changed, the new
settings written, the reports (JUnit read by a JUnit reader, Markdown, github-action-benchmark
JSON, the GitHub step summary), the history kept across runs, and errors as exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROGRAMS
from tuner.store import database as store
from tuner.store.attributes import CI_RUNS

PROGRAM = str(PROGRAMS / "versioned_workload.py")
DEPLOYED = {"threads": 3, "block": 1}  # version 1's best


def study_file(directory: Path, **ci: Any) -> Path:
    path = directory / "study.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fakestack",
        "workload": {"command": [sys.executable, PROGRAM, "--intervals", "1"],
                     "parser": "protocol", "timeout": 20},
        "knobs": {"threads": {"flag": "--threads", "low": 1, "high": 3, "default": 1},
                  "block": {"flag": "--block", "choices": [0, 1, 2], "default": 0}},
        "budget": {"n_trials": 12}, "noise": {"runs": 2},
        "sampler": {"name": "tpe", "seed": 1},
        "ci": {"retune_trials": 12, "rounds": 4, "max_rounds": 14,
               "version_command": [sys.executable, PROGRAM, "--version"], **ci}}))
    return path


def deployed_file(directory: Path, version: str = "1") -> Path:
    """The committed settings: version 1's best, 1.47x the defaults, measured under v1."""
    path = directory / "deploy" / "best.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "study": "fakestack", "knobs": DEPLOYED,
        "speedups": {"defaults": {"ratio": 1.47, "low": 1.43, "high": 1.52, "rounds": 6,
                                  "level": 0.99}},
        "environment": {"workload_version": f"fakestack {version}"}}))
    return path


def tuner_ci(directory: Path, *args: str, version: str, noise: str = "0.005",
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNER_", "GITHUB_"))}
    env.update(FAKESTACK_VERSION=version, FAKESTACK_NOISE=noise, **(extra_env or {}))
    return subprocess.run(
        [sys.executable, "-m", "tuner.cli", "ci", str(directory / "study.yaml"),
         "--study", "fakestack", "--storage", f"sqlite:///{directory / 'tuner.db'}",
         "--output", str(directory / "out"), "--quiet", *args],
        capture_output=True, text=True, env=env, cwd=directory, timeout=300, check=False)


def history(directory: Path) -> list[dict[str, Any]]:
    return CI_RUNS.get(store.load(f"sqlite:///{directory / 'tuner.db'}", "fakestack",
                                  heartbeat=False))


def test_unchanged_environment_is_ok_and_reports_validate(tmp_path: Path) -> None:
    from junitparser import JUnitXml

    study_file(tmp_path)
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    done = tuner_ci(tmp_path, "--previous", str(deployed_file(tmp_path)),
                    "--junit", "reports/junit.xml", "--markdown", "reports/summary.md",
                    "--benchmark-json", "reports/bench.json", version="1",
                    extra_env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: the deployed settings are still the best" in done.stdout
    assert "what changed: nothing in the environment" in done.stdout
    [record] = history(tmp_path)
    assert record["verdict"] == "ok" and record["retuned"] is None
    assert {c["rival"] for c in record["comparisons"]} == {"framework defaults",
                                                          "vendor settings"}
    assert record["speedup_now"]["low"] > 1.3  # (3, 1) is 1.47x the defaults (1, 0)
    assert not (tmp_path / "out").exists()  # nothing new to deploy
    # JUnit, read by a JUnit reader: one passing case for the study
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "reports/junit.xml"))))
    [case] = list(suite)
    assert case.name == "fakestack" and case.is_passed
    # github-action-benchmark's customBiggerIsBetter: name, unit, value (+ range, extra)
    [entry] = json.loads((tmp_path / "reports/bench.json").read_text())
    assert set(entry) == {"name", "unit", "value", "range", "extra"}
    assert entry["value"] == pytest.approx(record["speedup_now"]["ratio"], rel=1e-3)
    markdown = (tmp_path / "reports/summary.md").read_text()
    assert "### fakestack: **ok**" in markdown and "| framework defaults |" in markdown
    assert summary.read_text() == "earlier step\n" + markdown + "\n"


def test_an_upgrade_that_moves_the_optimum_is_regressed(tmp_path: Path) -> None:
    from junitparser import Failure, JUnitXml

    study_file(tmp_path)
    done = tuner_ci(tmp_path, "--previous", str(deployed_file(tmp_path)),
                    "--junit", "junit.xml", version="2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "regressed" in done.stdout
    assert "workload version fakestack 1 -> fakestack 2" in done.stdout
    [record] = history(tmp_path)
    assert record["changed"] == [{"field": "workload_version", "label": "workload version",
                                  "then": "fakestack 1", "now": "fakestack 2"}]
    # the study did not exist: the re-tune is the study itself, warm-started with the
    # deployed settings (enqueued after the baselines) and confirmed by the gate's race
    assert record["retuned"] == "fakestack"
    study = store.load(f"sqlite:///{tmp_path / 'tuner.db'}", "fakestack", heartbeat=False)
    assert study.trials[2].params == DEPLOYED
    new = record["new_best"]
    assert new["knobs"]["threads"] == 2 and new["high"] > new["low"] > 1.05
    written = json.loads((tmp_path / "out/fakestack/best.json").read_text())
    assert written["knobs"]["threads"] == 2 and written["verdict"] == "regressed"
    assert "--threads 2" in (tmp_path / "out/fakestack/best.sh").read_text()
    [case] = list(next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml")))))
    assert isinstance(case.result[0], Failure) and case.result[0].type == "regressed"
    # the next run checks what tuner recommended (no --previous): ok under version 2
    again = tuner_ci(tmp_path, version="2")
    assert again.returncode == 0, again.stdout + again.stderr
    first, second = history(tmp_path)
    assert second["deployed"]["knobs"]["threads"] == 2 and second["verdict"] == "ok"
    assert second["changed"] == [] and second["retuned"] is None


def test_a_small_gain_is_improved_and_fail_on_changed_fails_it(tmp_path: Path) -> None:
    from junitparser import JUnitXml

    study_file(tmp_path)
    done = tuner_ci(tmp_path, "--previous", str(deployed_file(tmp_path)), "--fail-on",
                    "changed", "--junit", "junit.xml", version="2-small")
    assert done.returncode == 1, done.stdout + done.stderr
    [record] = history(tmp_path)
    assert record["verdict"] == "improved" and record["exit_code"] == 1
    assert record["new_best"]["knobs"] == {"threads": 3, "block": 2}
    assert (tmp_path / "out/fakestack/best.env").exists()
    [case] = list(next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml")))))
    assert not case.is_passed  # --fail-on changed: the case fails as the job does


def test_too_noisy_to_decide_is_inconclusive(tmp_path: Path) -> None:
    from junitparser import JUnitXml, Skipped

    study_file(tmp_path, rounds=3, max_rounds=3)
    done = tuner_ci(tmp_path, "--previous", str(deployed_file(tmp_path)), "--retune", "never",
                    "--junit", "junit.xml", version="1", noise="0.6")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "inconclusive" in done.stdout
    [case] = list(next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml")))))
    assert isinstance(case.result[0], Skipped)
    # a report that cannot be written is an error (2), said in one line; the run is recorded
    done = tuner_ci(tmp_path, "--previous", str(deployed_file(tmp_path)), "--retune", "never",
                    "--markdown", "/proc/no/such/summary.md", version="1", noise="0.6")
    assert done.returncode == 2 and "cannot write a report: /proc/no" in done.stderr
    assert "Traceback" not in done.stderr and len(history(tmp_path)) == 2


def test_errors_exit_2_with_the_place_named(tmp_path: Path) -> None:
    study_file(tmp_path)
    done = tuner_ci(tmp_path, version="1")  # no study in the storage, no --previous
    assert done.returncode == 2
    assert "no study named 'fakestack'" in done.stderr and "--previous" in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"knobs": {"threads": 2, "nonsense": 1}}')
    done = tuner_ci(tmp_path, "--previous", str(bad), version="1")
    assert done.returncode == 2 and "nonsense" in done.stderr and str(bad) in done.stderr
    done = subprocess.run([sys.executable, "-m", "tuner.cli", "ci", str(tmp_path / "study.yaml"),
                           "--study", "other"], capture_output=True, text=True, check=False,
                          cwd=tmp_path)
    assert done.returncode == 2 and "no study named other" in done.stderr


def test_several_studies_one_report_each_with_its_verdict(tmp_path: Path) -> None:
    """Every study of the file when none is named; ``--previous`` a folder of NAME/best.json;
    a study that cannot be checked is an error case of its own, the others still run."""
    from junitparser import Error, JUnitXml

    study_file(tmp_path)
    both = yaml.safe_load((tmp_path / "study.yaml").read_text())
    both["ci"]["rounds"] = both["ci"]["max_rounds"] = 4
    other = {**both, "name": "other"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({"studies": [both, other]}))
    deploy = tmp_path / "deploy"
    (deploy / "fakestack").mkdir(parents=True)
    deployed_file(tmp_path).rename(deploy / "fakestack" / "best.json")
    (deploy / "other").mkdir()
    (deploy / "other" / "best.json").write_text('{"knobs": {"threads": 3, "typo": 1}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNER_", "GITHUB_"))}
    done = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "ci", str(tmp_path / "study.yaml"), "--storage",
         f"sqlite:///{tmp_path / 'tuner.db'}", "--previous", str(deploy), "--retune", "never",
         "--quiet", "--junit", "junit.xml", "--markdown", "summary.md"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
        env={**env, "FAKESTACK_VERSION": "1", "FAKESTACK_NOISE": "0.005"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "tuner ci: other:" in done.stderr and "typo" in done.stderr
    assert "tuner ci fakestack (run 1): ok" in done.stdout
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml"))))
    cases = {case.name: case for case in suite}
    assert set(cases) == {"fakestack", "other"} and cases["fakestack"].is_passed
    assert isinstance(cases["other"].result[0], Error)
    markdown = (tmp_path / "summary.md").read_text()
    assert "### fakestack: **ok**" in markdown and "### other: **error**" in markdown
    # a single best.json for several studies is refused before anything runs
    done = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "ci", str(tmp_path / "study.yaml"),
         "--previous", str(deploy / "fakestack" / "best.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False, env=env)
    assert done.returncode == 2 and "give a folder holding NAME/best.json" in done.stderr
