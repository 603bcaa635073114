"""A tuning study on each built-in workload's small preset completes through the loop
(shortened measurement; the fork launcher; baselines, a search trial, the report).

Slow (about two minutes for the five): the default run keeps the same path covered by the
real ResNet study of tests/workloads/test_resnet.py and the embedded-service study of the
browser test, and every workload's small preset runs in tests/workloads/test_onednn.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tuner.host import Host
from tuner.results.summary import summarize
from tuner.store import records
from tuner.testing.studies import run_study_file

CASES: dict[str, tuple[dict[str, object], str]] = {
    "resnet": ({"mode": "infer"}, "intra_op: [1, 2]"),
    "wavenet": ({}, "intra_op: [1, 2]"),
    "parallel_wavenet": ({"mode": "generate"}, "intra_op: [1, 2]"),
    "gnmt": ({}, "intra_op: [1, 2]"),
    "proxy": ({"backend": "numpy"}, "OMP_NUM_THREADS: [1, 2]"),
    "torch_resnet": ({"mode": "infer"}, "torch_threads: [1, 2], allocator: auto"),
    "torch_transformer": ({"mode": "infer"}, "torch_threads: [1, 2], omp_runtime: auto"),
}
SHORT = {"preset": "small", "seconds": 0.6, "intervals": 2, "warmup_steps": 1}


@pytest.mark.slow
@pytest.mark.parametrize("builtin", sorted(CASES))
def test_a_small_study_completes(builtin: str, write_study: Callable[[str], Path],
                                 local_host: Host, tmp_path: Path) -> None:
    params, knobs = CASES[builtin]
    workload = json.dumps({"builtin": builtin, "params": {**params, **SHORT}})
    path = write_study(f"""
name: {builtin}-loop
workload: {workload}
knobs: {{{knobs}}}
threads_within_binding: false
budget: {{n_trials: 3}}
noise: {{runs: 2}}
repeats: 1
screening: off
confirm: {{top: 0}}
""")
    result = run_study_file(path, local_host, f"sqlite:///{tmp_path / 'loop.db'}")
    trials = result.study.get_trials()
    assert len(trials) == 3
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), [
        t.user_attrs.get("reason") for t in trials]
    assert records.get(trials[0].user_attrs, "reported")["workload"] == builtin
    summary = summarize(result.study)
    assert summary.best is not None and summary.best.value and summary.best.value > 0
