"""The fork server: a forked trial is a fresh TensorFlow runtime that honours its own thread
settings, affinity and memory policy exactly as a fresh process does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import reported_settings
from tuner.execution.backend import ProcessBackend
from tuner.execution.forkserver import ForkServer, ForkServerBackend, plan, set_mempolicy
from tuner.execution.launch import Instance, Launch
from tuner.execution.runner import Status
from tuner.host import Host
from tuner.settings import get_settings
from tuner.space.search_space import build_space
from tuner.study.measure import Measurer
from tuner.testing import study_spec


@pytest.fixture(scope="module")
def fork() -> ForkServerBackend:
    backend = ForkServerBackend()
    yield backend
    backend.close()


def measure(backend, host: Host, **knobs):  # type: ignore[no-untyped-def]
    space = build_space(study_spec(name="f", knobs=knobs), host)
    outcome = Measurer(space, get_settings(), backend).run(space.fixed)
    assert outcome.status is Status.OK, outcome.reason + "\n" + outcome.tail
    assert outcome.reported is not None
    return outcome


@pytest.mark.slow  # a property of the server's import, not of any trial's settings
def test_importing_tensorflow_starts_no_thread_beyond_numpys_blas_pool(
        local_host: Host) -> None:
    """Fork copies one thread. The only others in the server are OpenBLAS's pool (NumPy
    starts it at import), which OpenBLAS stops and restarts around fork (pthread_atfork);
    TensorFlow and the workload module must start none."""
    backend = ForkServerBackend()
    try:
        measure(backend, local_host, intra_op=1)
        (server,) = backend.servers.values()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "KMP_"))}
        numpy_only = subprocess.run(
            [sys.executable, "-c", "import os, numpy; print(len(os.listdir('/proc/self/task')))"],
            capture_output=True, text=True, check=True, env=env).stdout.strip()
        assert server.threads == int(numpy_only)
    finally:
        backend.close()


def test_forked_trials_honour_their_settings_like_fresh_ones(fork: ForkServerBackend,
                                                             local_host: Host) -> None:
    """Memory binding is compared where numactl exists (a fresh process needs it; the fork
    server sets the policy itself)."""
    bind = local_host.tools.numactl is not None
    knobs = {"intra_op": 1, "inter_op": 1, "physcpubind": 1, "KMP_BLOCKTIME": 0,
             **({"membind": 0} if bind else {})}
    forked = measure(fork, local_host, **knobs).reported
    fresh = measure(ProcessBackend(), local_host, **knobs).reported
    for key in ("intra_op", "inter_op", "affinity", "mempolicy", "env", "batch_size"):
        assert forked[key] == fresh[key], key
    assert fresh["intra_op"] == 1 and fresh["inter_op"] == 1
    assert fresh["env"]["KMP_BLOCKTIME"] == "0"
    assert forked["affinity"] == local_host.topology.first_physical_cores(1)
    assert forked["mempolicy"].startswith("bind:0" if bind else "default")
    assert forked["pid"] != fresh["pid"]


@pytest.mark.slow  # the thread counts; test_forked_trials_honour_their_settings_like_fresh_ones
# checks in the default run that a forked trial gets the pools a fresh one gets
def test_forked_pools_really_have_their_size(fork: ForkServerBackend, local_host: Host) -> None:
    small = measure(fork, local_host, intra_op=1, inter_op=1).reported
    large = measure(fork, local_host, intra_op=8, inter_op=8).reported
    assert large["threads"] - small["threads"] >= 10, (small["threads"], large["threads"])


def test_one_server_serves_many_trials_and_skips_the_import(local_host: Host) -> None:
    fork = ForkServerBackend()
    try:
        first = measure(fork, local_host, intra_op=2)
        second = measure(fork, local_host, intra_op=1)
        assert len(fork.servers) == 1 and not fork.failures
    finally:
        fork.close()
    assert first.reported["pid"] != second.reported["pid"]
    # done before the fork: importing TensorFlow takes seconds (more on a slower machine);
    # a forked child only finds it imported
    assert second.timing is not None and second.timing["imports"] < 1.0


@pytest.mark.slow  # two TensorFlow servers (~27 s); tests/test_runtimes.py keys the servers by
# these variables and test_a_preloaded_allocator_has_a_server_of_its_own starts a real one
def test_import_time_variables_get_their_own_server(local_host: Host) -> None:
    backend = ForkServerBackend()
    try:
        off = measure(backend, local_host, TF_ENABLE_ONEDNN_OPTS=0).reported
        on = measure(backend, local_host, TF_ENABLE_ONEDNN_OPTS=1).reported
        assert len(backend.servers) == 2
        assert off["onednn_opts"] == "0" and on["onednn_opts"] == "1"
    finally:
        backend.close()


def test_a_forked_trial_past_its_timeout_is_stopped(fork: ForkServerBackend,
                                                    local_host: Host) -> None:
    spec = study_spec(name="t", workload={"builtin": "resnet", "timeout": 2,
                                          "params": {"preset": "small", "seconds": 60}})
    space = build_space(spec, local_host)
    outcome = Measurer(space, get_settings(), fork).run({})
    assert outcome.status is Status.TIMEOUT
    pid = (outcome.reported or {}).get("pid")
    if pid:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(
            f"/proc/{pid}/status").read().lower()


def test_a_trial_killed_at_its_timeout_leaves_the_next_trial_its_own_answers() -> None:
    """The runner waits for a trial until its timeout, kills it and moves on; the server's
    report of that exit can still be unread when the next trial starts. Answers carry the
    request they answer (and the pid): the late one is dropped, and the next trials get
    their own pid and exit status (in order-only pairing, the next spawn took the stale
    exit report for its reply)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = ForkServer("workloads.resnet", env)
    try:
        slow = server.spawn(["--preset", "small", "--seconds", "600"], env, Instance())
        with pytest.raises(subprocess.TimeoutExpired):
            slow.wait(timeout=0.5)  # its timeout
        killed = slow.pid
        os.killpg(killed, signal.SIGKILL)
        slow.stdout.close()
        del slow  # the runner gives up on it; its exit report is still to come
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{killed}") and time.monotonic() < deadline:
            time.sleep(0.05)  # reaped by the server: its exit report is on the way
        assert not os.path.exists(f"/proc/{killed}")

        quick = server.spawn(["--preset", "small", "--seconds", "0.3", "--intervals", "1",
                              "--warmup-steps", "1"], env, Instance())
        assert quick.pid != killed
        output = quick.stdout.read().decode()
        assert quick.wait(timeout=120) == 0, output
        assert reported_settings(output)["pid"] == quick.pid
        assert "FINAL throughput=" in output

        broken = server.spawn(["--no-such-flag"], env, Instance())
        broken.stdout.read()
        assert broken.wait(timeout=60) == 2  # argparse's usage error: its own status
        assert broken.pid not in (killed, quick.pid) and server.alive
    finally:
        server.close()


def test_only_builtin_single_instance_launches_fork() -> None:
    assert plan(Launch(argv=("python", "-m", "workloads.resnet", "--preset", "small"))) == (
        "workloads.resnet", ["--preset", "small"])
    assert plan(Launch(argv=("python", "bench.py"))) is None
    assert plan(Launch(argv=("python", "-m", "workloads.resnet"), cwd="/tmp")) is None


def test_set_mempolicy_binds_like_numactl() -> None:
    code = ("from tuner.execution.forkserver import set_mempolicy\n"
            "set_mempolicy('--membind=0')\n"
            "from workloads._common import memory_policy\n"
            "print(memory_policy())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("bind:0")
    with pytest.raises(ValueError):
        set_mempolicy("--membind=")
