"""Real third-party programs from Debian's packages, tuned through `command` studies as a new
user writes them: each knob reaches the program in the syntax it wants (an argument
template), the program's own output proves it (`echo`), and both baselines complete (a
program that cannot run without its flag names the value it runs with today, `default`).

* sysbench: `--threads=N` (`--name=value`), its options before the positional `run`;
* zstd: `-T N` written `-TN` (`-xVALUE`), a time to minimize;
* stress-ng: does nothing without `--cpu N` (it exits 1: "No stress workers invoked"); its
  knob is the appended form (`flag: --cpu`, two words at the end).

`.ci/run` installs them; on a machine without one, its test is skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from tuner.host import Host
from tuner.results.summary import summarize
from tuner.store import records
from tuner.testing.specs import study_yaml
from tuner.testing.studies import run_study_file


def needs(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")
    return path


def tune(write_study: Callable[[str], Path], host: Host, tmp_path: Path,
         **study: Any) -> Any:
    """Run the study to its end; its StudyRun result."""
    path = write_study(study_yaml(**{"budget": {"n_trials": 4}, "noise": {"runs": 2},
                                     "repeats": 1, "screening": "off", "confirm": {"top": 0},
                                     "sampler": {"name": "grid"},
                                     "threads_within_binding": False, **study}))
    return run_study_file(path, host, f"sqlite:///{tmp_path / 'third.db'}")


def check_values_arrived(result: Any, knob: str) -> None:
    """Every trial completed, both baselines included, and the value each asked for is the
    one the program printed back (a trial that reused an earlier one's result ran nothing)."""
    trials = result.study.get_trials()
    roles = [records.get(t.user_attrs, "role") for t in trials]
    assert roles[:2] == ["defaults", "vendor"]
    for trial in trials:
        assert trial.state == TrialState.COMPLETE, records.get(trial.user_attrs, "reason")
        applied = records.get(trial.user_attrs, "applied") or {}
        echoed = records.get(trial.user_attrs, "echoed") or {}
        if "duplicate_of" in trial.user_attrs:
            continue  # the earlier trial of the same values measured (and read back) them
        if knob in applied:
            assert str(echoed[knob]) == str(applied[knob]), (applied, echoed)
        shell = records.get(trial.user_attrs, "shell")
        assert "{" not in shell  # every placeholder was filled in (or dropped)
    summary = summarize(result.study)
    assert summary.best is not None


def test_sysbench_takes_name_equals_value_before_its_positional_argument(
        write_study: Callable[[str], Path], local_host: Host, tmp_path: Path) -> None:
    sysbench = needs("sysbench")
    result = tune(write_study, local_host, tmp_path, name="sysbench-cpu",
                  workload={"command": [sysbench, "cpu", "--threads={threads}", "--time=1",
                                        "run"],
                            "parser": {"regex": r"events per second:\s+(?P<throughput>[0-9.]+)"},
                            "echo": r"Number of threads: (?P<threads>[0-9]+)",
                            "timeout": 30},
                  knobs={"threads": {"choices": [1, 2], "default": 1}})
    check_values_arrived(result, "threads")
    shells = [records.get(t.user_attrs, "shell") for t in result.study.get_trials()]
    assert any(re.search(r"cpu --threads=2 --time=1 run$", s) for s in shells), shells


def test_zstd_takes_its_value_glued_to_the_option(
        write_study: Callable[[str], Path], local_host: Host, tmp_path: Path) -> None:
    zstd = needs("zstd")
    data = tmp_path / "input.txt"
    data.write_bytes(b"".join(b"line %d of a text that compresses well enough\n" % i
                              for i in range(200_000)))
    result = tune(write_study, local_host, tmp_path, name="zstd-threads",
                  workload={"command": [zstd, "-vv", "-f", "-3", "-T{threads}", str(data),
                                        "-o", str(tmp_path / "out.zst")],
                            "parser": {"regex": r"Completed in (?P<seconds>[0-9.]+) sec"},
                            "echo": r"--threads=(?P<threads>[0-9]+)", "timeout": 60},
                  objective={"metric": "seconds", "direction": "minimize"},
                  knobs={"threads": {"choices": [1, 2], "default": 1}})
    check_values_arrived(result, "threads")
    shells = [records.get(t.user_attrs, "shell") for t in result.study.get_trials()]
    assert any(" -T2 " in s for s in shells), shells


def test_stress_ng_runs_its_baselines_with_the_flag_it_cannot_do_without(
        write_study: Callable[[str], Path], local_host: Host, tmp_path: Path) -> None:
    stress = needs("stress-ng")
    result = tune(write_study, local_host, tmp_path, name="stress-cpu",
                  workload={"command": [stress, "--timeout", "1s", "--metrics-brief"],
                            "parser": {"regex": r"\] cpu\s+\d+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+"
                                                r"(?P<throughput>[0-9.]+)"},
                            "echo": r"dispatching hogs: (?P<cpu>[0-9]+) cpu", "timeout": 30},
                  knobs={"cpu": {"flag": "--cpu", "choices": [1, 2], "default": 1}})
    check_values_arrived(result, "cpu")
    defaults = result.study.get_trials()[0]
    assert records.get(defaults.user_attrs, "applied") == {"cpu": 1}
