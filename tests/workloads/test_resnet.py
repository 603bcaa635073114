"""The ResNet-50 workload and the loop on real TensorFlow processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS, PYTHON, reported_settings
from tuner.execution.runner import RunRequest, Status, run
from tuner.host import Host
from tuner.settings import child_base_environment
from tuner.space.search_space import build_space
from tuner.spec import parse_text
from tuner.spec.models import ParserSpec

QUICK = "params: {preset: small, seconds: 1.0, intervals: 2, warmup_steps: 1}"


def run_space(text: str, host: Host, settings: dict[str, object] | None = None,
              parser=None):  # type: ignore[no-untyped-def]
    space = build_space(parse_text(text, "t.yaml").studies[0], host)
    launch = space.launch(settings or {})
    outcome = run(RunRequest(launch=launch, parser_spec=parser or ParserSpec(preset="protocol"),
                             metric="throughput", timeout=180,
                             base_env=child_base_environment(space.controlled_env)))
    assert outcome.status is Status.OK, outcome.reason + "\n" + outcome.tail
    return launch, outcome


# ~8 s: test_forked_trials_honour_their_settings_like_fresh_ones (test_forkserver.py)
# checks the same knobs, their values included, in a fresh process and a forked one
@pytest.mark.slow
def test_knobs_reach_the_builtin_workload(local_host: Host) -> None:
    """Memory binding is checked where numactl exists (a fresh process needs it)."""
    first = local_host.topology.first_physical_cores(1)
    bind = local_host.tools.numactl is not None
    _, outcome = run_space(f"""
name: reach
workload: {{builtin: resnet, {QUICK}}}
knobs: {{intra_op: 1, inter_op: 1, physcpubind: 1, KMP_BLOCKTIME: 0, batch_size: 4
         {", membind: 0" if bind else ""}}}
""", local_host)
    reported = outcome.reported
    assert reported is not None
    assert reported["intra_op"] == 1 and reported["inter_op"] == 1
    assert reported["affinity"] == first
    assert reported["mempolicy"].startswith("bind:0" if bind else "default")
    assert reported["env"]["KMP_BLOCKTIME"] == "0"
    assert reported["batch_size"] == 4
    assert "total images/sec:" in outcome.tail
    assert len(outcome.intervals["throughput"]) == 2


def test_defaults_report_tensorflows_own_choice(local_host: Host) -> None:
    _, outcome = run_space(f"name: d\nworkload: {{builtin: resnet, {QUICK}}}\n", local_host)
    assert outcome.reported is not None
    cpus = local_host.topology.logical_cpus
    assert outcome.reported["intra_op_requested"] == 0 and outcome.reported["intra_op"] == cpus
    assert outcome.reported["mempolicy"] == "default"


@pytest.mark.slow  # tests/contracts/test_parsers.py reads the same line in the default run
def test_tf_cnn_benchmarks_parser_reads_the_workloads_own_line(local_host: Host) -> None:
    _, outcome = run_space(f"name: p\nworkload: {{builtin: resnet, {QUICK}}}\n", local_host,
                           parser=ParserSpec(preset="tf_cnn_benchmarks"))
    assert outcome.metrics["throughput"] > 0


def test_thread_pools_reach_a_plain_tensorflow_program_through_the_environment(
        local_host: Host) -> None:
    study = f"""
name: env-route
workload:
  command: [{PYTHON}, {PROGRAMS / 'tf_threads.py'}]
  parser: protocol
  runtime: tensorflow
knobs: {{intra_op: INTRA, inter_op: INTER}}
"""
    threads = {}
    for pools in (1, 8):
        text = study.replace("INTRA", str(pools)).replace("INTER", str(pools))
        _, outcome = run_space(text, local_host)
        assert outcome.reported is not None
        assert outcome.reported["env"] == {"TF_NUM_INTRAOP_THREADS": str(pools),
                                           "TF_NUM_INTEROP_THREADS": str(pools)}
        threads[pools] = outcome.reported["threads"]
    # 7 more threads in each pool: TensorFlow really sized its pools from the variables
    assert threads[8] - threads[1] >= 10, threads


@pytest.mark.slow  # train mode runs in the default run too (test_onednn.py, resnet-train-0)
def test_train_mode_and_bf16_run(local_host: Host) -> None:
    _, outcome = run_space("""
name: train
workload: {builtin: resnet, params: {preset: small, mode: train, seconds: 1.0, intervals: 1,
            warmup_steps: 1, image_size: 32}}
knobs: {precision: bf16, batch_size: 2}
""", local_host)
    assert outcome.reported is not None
    assert outcome.reported["mode"] == "train" and outcome.reported["precision"] == "bf16"


def test_workload_rejects_bad_flags_clearly() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.resnet", "--intra-op", "-1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--inter-op and --intra-op must be >= 0" in proc.stderr


@pytest.mark.slow  # 40 s; the fake workload's pasted line runs by default (test_cli)
def test_a_real_study_then_the_pasted_launch_line(write_study: Callable[[str], Path],
                                                  tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'real.db'}"
    path = write_study(f"""
name: resnet-real
workload: {{builtin: resnet, {QUICK}}}
knobs:
  intra_op: auto
  inter_op: [1, 2]
budget: {{n_trials: 4}}
sampler: {{seed: 1}}
noise: {{runs: 2}}
repeats: 1
confirm: {{top: 1, rounds: 2, max_rounds: 2}}
storage: {storage}
""")
    out = subprocess.run([sys.executable, "-m", "tuner.cli", "tune", str(path), "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^Best: throughput .*, confirmed over 2 interleaved rounds — trial \d+",
                     out.stdout, re.MULTILINE), out.stdout
    assert "Speedup over" in out.stdout and "Noise floor:" in out.stdout
    best = json.loads(subprocess.run(
        [sys.executable, "-m", "tuner.cli", "best", "resnet-real", "--storage", storage,
         "--format", "json"], capture_output=True, text=True, check=True).stdout)
    line = subprocess.run([sys.executable, "-m", "tuner.cli", "best", "resnet-real",
                           "--storage", storage, "--format", "shell"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ran = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=180,
                         cwd="/", env={"PATH": os.environ["PATH"]})
    assert ran.returncode == 0, ran.stderr
    settings = reported_settings(ran.stdout)
    for knob in ("intra_op", "inter_op"):
        applied = best["knobs"].get(knob)
        if isinstance(applied, int):
            assert settings[knob] == applied
    assert "total images/sec:" in ran.stdout


@pytest.mark.slow
def test_full_preset_inference_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "workloads.resnet", "--preset", "full",
                           "--seconds", "5", "--intervals", "1", "--warmup-steps", "1"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "total images/sec:" in proc.stdout
