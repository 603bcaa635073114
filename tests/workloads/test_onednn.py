"""Every built-in workload runs on whichever CPU kernels TensorFlow picks: oneDNN's, or its own
(Eigen's), with ``TF_ENABLE_ONEDNN_OPTS`` unset, 0 and 1.

TensorFlow turns oneDNN on by default only on CPUs with AVX-512 (this machine has it), so on
an AVX2 CPU "unset" means what 0 means here; a kernel that exists for only one of the two
sets (Eigen cannot differentiate a dilated convolution: Parallel WaveNet's distillation once
crashed at the defaults there) fails one of these runs. The default run checks every
workload with 0, the kernels such a CPU runs at the defaults (on a CPU without AVX-512, where
0 is the default, a case whose workload's own small-preset test runs in the default run is
skipped: that test runs exactly this); unset is also what each workload's own small-preset
test runs with, and the whole matrix is ``slow``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, final_throughput, reported_settings

#: Each workload and mode, at its small preset.
CASES: dict[str, list[str]] = {
    "wavenet-fast": ["workloads.wavenet"],
    "wavenet-naive": ["workloads.wavenet", "--algorithm", "naive"],
    "parallel_wavenet-generate": ["workloads.parallel_wavenet", "--mode", "generate"],
    "parallel_wavenet-distill": ["workloads.parallel_wavenet", "--mode", "distill"],
    "resnet-infer": ["workloads.resnet", "--mode", "infer"],
    "resnet-train": ["workloads.resnet", "--mode", "train"],
    "gnmt": ["workloads.gnmt"],
    "proxy-numpy": ["workloads.proxy", "--backend", "numpy", "--probe-mib", "64"],
    "proxy-tensorflow": ["workloads.proxy", "--backend", "tensorflow", "--probe-mib", "64"],
}
#: One short interval, no warm-up: the step is built, traced and run (gradients included).
QUICK = ["--preset", "small", "--seconds", "0.2", "--intervals", "1", "--warmup-steps", "0"]


def cases() -> list[object]:
    out = []
    for case in CASES:
        for onednn in (None, "0", "1"):
            marks = () if onednn == "0" else (pytest.mark.slow,)
            out.append(pytest.param(case, onednn, id=f"{case}-{onednn or 'unset'}",
                                    marks=marks))
    return out


#: Cases whose workload's own small-preset test runs in the default run with the variable
#: unset (tests/workloads/test_{resnet,gnmt,wavenet,parallel_wavenet}.py).
OWN_DEFAULT_TEST = frozenset({"resnet-infer", "gnmt", "wavenet-fast",
                              "parallel_wavenet-generate"})


def avx512() -> bool:
    """The CPU has AVX-512 (TensorFlow then turns oneDNN on by default)."""
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("flags") and " avx512f" in line for line in info)
    except OSError:
        return True


@pytest.mark.parametrize(("case", "onednn"), cases())
def test_small_preset_runs_with_onednn_unset_off_and_on(case: str, onednn: str | None) -> None:
    if onednn == "0" and case in OWN_DEFAULT_TEST and not avx512():
        pytest.skip("without AVX-512 TensorFlow runs its own kernels by default: the "
                    "workload's own small-preset test already runs exactly this")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    proc = subprocess.run([sys.executable, "-m", *CASES[case], *QUICK], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^FINAL throughput=[0-9.]+ unit=\S+", proc.stdout, re.MULTILINE), (
        proc.stdout[-2000:])
    assert final_throughput(proc.stdout) > 0
    assert reported_settings(proc.stdout)["onednn_opts"] == (onednn or "default")
