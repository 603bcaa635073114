"""The TensorFlow built-ins under Intel's TensorFlow 2.14 (its OpenMP build), in the runtime
named ``intel-tf`` (``make test`` makes it: ``tuner runtime create intel-tf --package
intel-tensorflow==2.14.0 --package 'numpy<2'``; skipped where it does not exist): each
runs its small preset through tuner's launch, reports oneDNN on OpenMP with Intel's
libiomp5 mapped, and the OpenMP variables reach Intel's runtime."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tuner.execution import runtimes
from tuner.execution.backend import ProcessBackend
from tuner.execution.forkserver import ForkServerBackend
from tuner.execution.outcome import Outcome, Status
from tuner.host import Host
from tuner.settings import child_base_environment, get_settings
from tuner.space.search_space import SearchSpace, build_space
from tuner.study.measure import Measurer
from tuner.testing import study_spec

RUNTIME = "intel-tf"
QUICK = {"preset": "small", "seconds": 0.5, "intervals": 1, "warmup_steps": 1}

pytestmark = pytest.mark.skipif(
    RUNTIME not in runtimes.names(get_settings().runtimes_dir),
    reason=f"no runtime named {RUNTIME} (tuner runtime create {RUNTIME} --package "
           "intel-tensorflow==2.14.0 --package 'numpy<2')")


def space_of(builtin: str, params: dict[str, Any], host: Host, **knobs: Any) -> SearchSpace:
    return build_space(study_spec(name=f"intel-{builtin}", knobs=knobs, workload={
        "builtin": builtin, "python": RUNTIME, "params": {**QUICK, **params}}), host)


def run(space: SearchSpace, backend: Any) -> Outcome:
    outcome = Measurer(space, get_settings(), backend).run(space.fixed)
    assert outcome.status is Status.OK, outcome.reason + "\n" + outcome.tail
    assert outcome.reported is not None
    return outcome


@pytest.mark.slow  # ~35 s; the default run keeps test_omp_num_threads_reaches_intels_runtime
# (Intel's runtime reads the launch's OMP_NUM_THREADS), and tests/test_ci_upgrade.py runs
# ResNet in this runtime too
def test_resnet_runs_onednn_on_intels_openmp(local_host: Host) -> None:
    space = space_of("resnet", {}, local_host, OMP_NUM_THREADS=1)
    assert space.ctx.target.python.endswith(f"/{RUNTIME}/bin/python")
    fork = ForkServerBackend()
    try:
        reported = run(space, fork).reported
        assert reported is not None
        assert reported["tensorflow"] == "2.14.0" and reported["build"] == {
            "framework": "tensorflow", "version": "2.14.0", "onednn": True,
            "onednn_threading": "openmp"}
        assert "libiomp5" in reported["libraries"]
        assert reported["env"]["OMP_NUM_THREADS"] == "1"
        ((python, module, _),) = fork.servers
        assert python == space.ctx.target.python and module == "workloads.resnet"
    finally:
        fork.close()
    # the study's fingerprint is the runtime's, not tuner's own venv's
    fp = runtimes.fingerprint_of(local_host, RUNTIME, settings=get_settings())
    assert (fp.runtime, fp.tensorflow, fp.onednn_threading, fp.openmp) == (
        RUNTIME, "2.14.0", "openmp", "libiomp5")


@pytest.mark.parametrize("threads", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_omp_num_threads_reaches_intels_runtime(local_host: Host, threads: int) -> None:
    """What Intel's libiomp5, loaded by TensorFlow in the runtime, read from the launch's
    environment (omp_get_max_threads), with tuner's launch of the study."""
    space = space_of("resnet", {}, local_host, OMP_NUM_THREADS=threads)
    launch = space.launch(space.fixed)
    code = ("import os, ctypes\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
            "import tensorflow\n"
            "print(ctypes.CDLL('libiomp5.so').omp_get_max_threads())\n")
    env = {**child_base_environment(("OMP_NUM_THREADS",)), **launch.env}
    out = subprocess.run([launch.argv[0], "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    assert out[-1] == str(threads)


@pytest.mark.slow
@pytest.mark.parametrize(("builtin", "params"), [
    ("wavenet", {}), ("parallel_wavenet", {}), ("gnmt", {}),
    ("proxy", {"backend": "tensorflow"}), ("resnet", {"mode": "train"})])
def test_the_tensorflow_builtins_run_under_tf_2_14(local_host: Host, builtin: str,
                                                   params: dict[str, Any]) -> None:
    reported = run(space_of(builtin, params, local_host), ProcessBackend()).reported
    assert reported is not None
    assert reported["tensorflow"] == "2.14.0"
    assert reported["build"]["onednn_threading"] == "openmp"
