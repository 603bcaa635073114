"""The PyTorch workloads (torch_resnet, torch_transformer) as real processes: the contract
lines read by tuner's own parsers, torch's pools sized from the flags, and the threading and
allocator libraries the process really mapped (the stock wheel's libgomp; jemalloc and
Intel's OpenMP when LD_PRELOAD puts them in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, reported_settings
from tuner.execution import libraries
from tuner.execution.parsers import Parser, make_parser
from tuner.spec.models import ParserSpec
from workloads import _torch

#: One short run: 1 s in 2 intervals after one untimed step.
QUICK = ["--preset", "small", "--seconds", "1", "--intervals", "2", "--warmup-steps", "1"]
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
IOMP5 = Path(sys.prefix) / "lib" / "libiomp5.so"


def run_workload(module: str, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, "-m", f"workloads.{module}", *QUICK, *args],
                          cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def parsed(stdout: str, preset: str = "protocol") -> Parser:
    parser = make_parser(ParserSpec(preset=preset))
    for line in stdout.splitlines():
        parser.feed(line)
    return parser


def test_resnet_prints_the_contract_and_reports_the_pools_it_was_given() -> None:
    out = run_workload("torch_resnet", "--threads", "1", "--interop-threads", "1")
    protocol = parsed(out)
    assert protocol.result()["throughput"] > 0
    assert len(protocol.intervals("throughput")) == 2
    assert protocol.timing is not None
    assert {"imports", "build", "first_step", "measure"} <= set(protocol.timing)
    reported = protocol.reported
    assert reported is not None and reported["workload"] == "torch_resnet"
    assert reported["torch_threads"] == 1 and reported["torch_interop_threads"] == 1
    assert reported["torch_threads_requested"] == 1
    assert reported["mode"] == "infer" and reported["memory_format"] == "channels_last"
    assert reported["batch_size"] == 8 and reported["precision"] == "fp32"
    # the stock wheel: torch's own libgomp, mapped and answering the OpenMP calls
    assert "libgomp" in reported["libraries"] and "libiomp5" not in reported["libraries"]
    assert reported["openmp_runtime"] == "libgomp"
    build = reported["build"]
    assert build["framework"] == "torch" and build["version"] == reported["torch"]
    assert build["parallel_backend"] == "OpenMP" and build["openmp"].startswith("OpenMP")
    assert build["mkldnn"]
    # the reference line, read by the tf_cnn_benchmarks preset like tf_cnn_benchmarks' own
    reference = parsed(out, "tf_cnn_benchmarks").result()["throughput"]
    assert reference == pytest.approx(protocol.result()["throughput"], abs=0.01)


def test_defaults_are_torchs_own() -> None:
    out = run_workload("torch_transformer")
    protocol = parsed(out)
    assert protocol.result()["throughput"] > 0
    reported = protocol.reported
    assert reported is not None and reported["workload"] == "torch_transformer"
    assert reported["torch_threads_requested"] is None
    assert reported["torch_interop_threads_requested"] is None
    assert reported["torch_threads"] == len(os.sched_getaffinity(0))
    assert (reported["seq_len"], reported["layers"], reported["d_model"]) == (64, 2, 256)
    final = protocol.result()["throughput"]
    line = next(x for x in out.splitlines() if x.startswith("Throughput: "))
    assert line == f"Throughput: {final:.2f} sequences/sec"
    # the regex the README gives for it
    reference = make_parser(ParserSpec(regex=r"Throughput: (?P<throughput>[0-9.]+) sequences/sec"))
    for text in out.splitlines():
        reference.feed(text)
    assert reference.result()["throughput"] == pytest.approx(final, abs=0.01)


@pytest.mark.parametrize(("module", "extra"), [
    ("torch_resnet", ["--image-size", "32", "--batch-size", "2", "--precision", "bf16"]),
    pytest.param("torch_transformer", ["--layers", "1", "--seq-len", "32"],
                 marks=pytest.mark.slow),
])
def test_train_mode_runs(module: str, extra: list[str]) -> None:
    reported = parsed(run_workload(module, "--mode", "train", *extra)).reported
    assert reported is not None and reported["mode"] == "train"
    if module == "torch_resnet":
        assert reported["precision"] == "bf16" and reported["batch_size"] == 2


def test_a_preloaded_allocator_is_reported() -> None:
    if not JEMALLOC.exists():
        pytest.skip(f"{JEMALLOC} is missing (Debian's libjemalloc2; .ci/run installs it)")
    out = run_workload("torch_transformer", env={"LD_PRELOAD": str(JEMALLOC)})
    reported = reported_settings(out)
    assert "jemalloc" in reported["libraries"] and "tcmalloc" not in reported["libraries"]
    assert reported["env"]["LD_PRELOAD"] == str(JEMALLOC)


def test_preloaded_intel_openmp_answers_the_openmp_calls() -> None:
    """torch keeps its libgomp mapped (libtorch_cpu needs it), but Intel's runtime, first in
    the global scope, defines the GOMP_* and omp_* symbols torch calls: it is the one
    running."""
    if not IOMP5.exists():
        pytest.skip(f"{IOMP5} is missing (the intel-openmp package)")
    out = run_workload("torch_transformer", env={"LD_PRELOAD": str(IOMP5),
                                                 "KMP_BLOCKTIME": "0"})
    reported = reported_settings(out)
    assert {"libiomp5", "libgomp"} <= set(reported["libraries"])
    assert reported["openmp_runtime"] == "libiomp5"
    assert reported["env"]["KMP_BLOCKTIME"] == "0"


CHECK_NO_TORCH = """
import sys
from workloads import {module}
try:
    {module}.main(sys.argv[1:])
except SystemExit as exit:
    print("exit", exit.code, "torch" in sys.modules)
"""


@pytest.mark.parametrize(("module", "args", "message"), [
    ("torch_resnet", ["--threads", "0"], "--threads must be >= 1, got 0"),
    ("torch_resnet", ["--interop-threads", "-2"], "--interop-threads must be >= 1, got -2"),
    ("torch_resnet", ["--precision", "fp16"], "argument --precision: invalid choice"),
    ("torch_resnet", ["--image-size", "0"], "--image-size must be >= 1"),
    ("torch_transformer", ["--seq-len", "x"], "argument --seq-len: invalid int value"),
    ("torch_transformer", ["--heads", "5"], "--d-model (256) must be a multiple of --heads"),
])
def test_a_bad_flag_fails_at_once_naming_it(module: str, args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-c", CHECK_NO_TORCH.format(module=module), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "exit 2 False", proc.stdout + proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


PATHS = (
    "/venv/lib/python3.11/site-packages/torch/lib/libgomp-a34b3233.so.1",
    "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0",
    "/venv/lib/libiomp5.so",
    "/usr/lib/llvm-17/lib/libomp.so.5",
    "/usr/lib/x86_64-linux-gnu/libtbb.so.12",
    "/venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10 (deleted)",
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/x86_64-linux-gnu/libompitrace.so.40",  # not an OpenMP runtime
    "/usr/lib/x86_64-linux-gnu/libgomp.a",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
)


def test_libraries_are_classified_by_file_name_as_tuner_does() -> None:
    maps = "\n".join(f"7f00-7f01 r-xp 00000000 08:01 1 {path}" for path in PATHS)
    maps += "\n7f02-7f03 rw-p 00000000 00:00 0 [heap]\n"
    assert _torch.mapped_libraries(maps) == ["jemalloc", "libgomp", "libiomp5", "libomp",
                                             "libtbb", "openblas", "tcmalloc"]
    # the workload's SETTINGS and tuner's own reading of /proc/PID/maps name them alike
    assert [_torch.classify_library(p) for p in PATHS] == [libraries.classify(p)
                                                          for p in PATHS]


PARALLEL_INFO = """ATen/Parallel:
\tat::get_num_threads() : 2
\tat::get_num_interop_threads() : 2
OpenMP 201511 (a.k.a. OpenMP 4.5)
\tomp_get_max_threads() : 2
Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71049cd69a3df32adcccb623b12cd7baa22)
std::thread::hardware_concurrency() : 2
ATen parallel backend: OpenMP
"""


@pytest.mark.parametrize(("text", "expected"), [
    (PARALLEL_INFO, {"parallel_backend": "OpenMP", "openmp": "OpenMP 201511 (a.k.a. OpenMP 4.5)",
                     "mkldnn": "Intel(R) MKL-DNN v3.12.0 (Git Hash "
                               "80afa71049cd69a3df32adcccb623b12cd7baa22)"}),
    ("OpenMP not found\noneDNN v3.5\nATen parallel backend: native thread pool\n",
     {"parallel_backend": "native thread pool", "openmp": "OpenMP not found",
      "mkldnn": "oneDNN v3.5"}),
    ("", {"parallel_backend": None, "openmp": None, "mkldnn": None}),
])
def test_parallel_info_is_parsed(text: str, expected: dict[str, Any]) -> None:
    assert _torch.parse_parallel_info(text) == expected


@pytest.mark.slow
@pytest.mark.parametrize("module", ["torch_resnet", "torch_transformer"])
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_full_preset_runs(module: str, mode: str) -> None:
    proc = subprocess.run([sys.executable, "-m", f"workloads.{module}", "--preset", "full",
                           "--mode", mode, "--seconds", "5", "--intervals", "1",
                           "--warmup-steps", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert parsed(proc.stdout).result()["throughput"] > 0
