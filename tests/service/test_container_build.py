"""The container images built and run for real: scripts/build-images.sh builds tuner:slim and
tuner:tensorflow with buildah (on a local Debian base when the registry is unreachable),
starts the API (slim) and a worker (tensorflow) with podman against this machine's
PostgreSQL, and a command study submitted over HTTP runs to its answer in the worker's
container. Needs root, buildah and podman; `.venv/bin/pytest -m slow` runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import fresh_database
from tests.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-images.sh"
TOKENS = {"TUNER_API_TOKEN": "container-write", "TUNER_ADMIN_TOKEN": "container-admin"}
# A command the image already has: its own Python. Throughput peaks at --threads 2.
PROGRAM = """\
import random, sys
n = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
rate = (1000 - 40 * (n - 2) ** 2) * random.uniform(0.995, 1.005)
print("METRIC throughput=%.1f unit=items/s interval=1" % rate, flush=True)
print("FINAL throughput=%.1f unit=items/s" % rate, flush=True)
"""
STUDY = "container-smoke"


def study_file() -> str:
    program = "\n".join("      " + line for line in PROGRAM.splitlines())
    return f"""name: {STUDY}
workload:
  command:
    - python3
    - -c
    - |
{program}
  parser: protocol
knobs: {{threads: {{flag: --threads, low: 1, high: 4}}}}
budget: {{n_trials: 6}}
noise: {{runs: 2}}
repeats: 1
screening: off
confirm: {{top: 1, rounds: 2, max_rounds: 2}}
"""


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (buildah --isolation=chroot, debootstrap, podman --network host)"
    for tool in ("buildah", "podman"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {tool})"
    if cgroups_hybrid():
        return ("this host mounts cgroups in hybrid mode (v1 controllers, and cgroup2 at "
                "/sys/fs/cgroup/unified): podman's runtime, crun, refuses to start containers "
                "there ('cgroups in hybrid mode not supported')")
    return None


def cgroups_hybrid() -> bool:
    """cgroup v1 controllers mounted next to a cgroup2 hierarchy (not at /sys/fs/cgroup)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return False
    v1 = any(m[2] == "cgroup" for m in mounts if len(m) > 2)
    v2_aside = any(m[2] == "cgroup2" and m[1] != "/sys/fs/cgroup" for m in mounts if len(m) > 2)
    return v1 and v2_aside


pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(why_not() is not None, reason=why_not() or "")]


def script(*args: str, env: dict[str, str] | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """scripts/build-images.sh ARGS; fails the test, with its output, if it fails."""
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout + done.stderr[-6000:]
    return done


def in_container(container: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "exec", container, *argv], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    with fresh_database("tuner_container") as url:
        yield url


@dataclass(frozen=True)
class Services:
    url: str
    api: str
    worker: str
    storage: str


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Both images built by the script: its printed sizes by image."""
    started = time.monotonic()
    done = script("build", timeout=3600)
    print(f"build: {time.monotonic() - started:.1f} s\n{done.stderr[-1500:]}")
    sizes = dict(re.findall(r"^(\S+:(?:slim|tensorflow))\s+(.+)$", done.stdout, re.M))
    assert set(sizes) == {"localhost/tuner:slim", "localhost/tuner:tensorflow"}, done.stdout
    return sizes


@pytest.fixture(scope="module")
def services(images: dict[str, str], database: str) -> Iterator[Services]:
    prefix = f"tuner-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = time.monotonic()
    try:
        script("run", "--storage", database, "--port", str(port), "--prefix", prefix,
               "--env", "TUNER_WORKER_POLL_SECONDS=0.5", env=TOKENS)
        print(f"run: API and worker healthy in {time.monotonic() - started:.1f} s")
        yield Services(url=f"http://127.0.0.1:{port}", api=f"{prefix}-api",
                       worker=f"{prefix}-worker", storage=database)
    finally:
        for container in (f"{prefix}-api", f"{prefix}-worker"):
            logs = subprocess.run(["podman", "logs", container], capture_output=True,
                                  text=True, timeout=60)
            print(f"--- {container}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")
        script("stop", "--prefix", prefix, "--volumes")


def wait_done(client: httpx.Client, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    study: dict[str, Any] = {}
    while time.monotonic() < deadline:
        study = client.get(f"/studies/{STUDY}").json()
        if study.get("status") in ("done", "failed"):
            return study
        time.sleep(1)
    raise AssertionError(f"the study did not finish in {timeout} s: {study.get('status')}")


def test_images_build_and_a_command_study_runs_in_the_worker_container(
        services: Services) -> None:
    admin = {"Authorization": f"Bearer {TOKENS['TUNER_ADMIN_TOKEN']}",
             "Content-Type": "application/yaml"}
    with httpx.Client(base_url=services.url, timeout=30) as client:
        body = study_file().encode()
        writer = {**admin, "Authorization": f"Bearer {TOKENS['TUNER_API_TOKEN']}"}
        assert client.post("/studies", content=body, headers=writer).status_code == 403
        assert client.post("/studies", content=body, headers=admin).status_code == 201
        started = time.monotonic()
        study = wait_done(client, timeout=600)
        print(f"study: done in {time.monotonic() - started:.1f} s")
    assert study["status"] == "done", study.get("status_reason")
    assert study["trials"] == study["planned"] == 6
    assert study["states"] == {"complete": 6}
    best = study["best_config"]
    threads = best["knobs"]["threads"]
    assert best["value"] == pytest.approx(1000 - 40 * (threads - 2) ** 2, rel=0.02)
    assert best["confirmed"] and f"--threads {threads}" in best["launch"]
    assert study["best"] == best["value"]


def test_the_containers_run_as_tuner_with_their_own_packages_and_checks(
        services: Services) -> None:
    for container in (services.api, services.worker):
        assert in_container(container, "id", "-un").stdout.strip() == "tuner"
        assert in_container(container, "touch", "/app/tuner-out").returncode == 0
        assert in_container(container, "touch", "/opt/tuner/bin/x").returncode == 1
    no_tf = in_container(services.api, "python3", "-c", "import tensorflow")
    assert no_tf.returncode == 1 and "No module named 'tensorflow'" in no_tf.stderr
    tf = in_container(services.worker, "python3", "-c",
                      "import tensorflow as tf; print(tf.__version__)")
    assert tf.returncode == 0, tf.stderr
    assert in_container(services.worker, "tuner-healthcheck", "db",
                        services.storage).returncode == 0
    wrong = services.storage.replace(":5432/", ":1/")
    assert in_container(services.worker, "tuner-healthcheck", "db", wrong).returncode == 1
    lock_dir = in_container(services.worker, "sh", "-c", "echo $TUNER_LOCK_DIR; cat /proc/mounts")
    assert lock_dir.stdout.startswith("/var/lib/tuner/locks\n")
    assert " /var/lib/tuner " in lock_dir.stdout, "the lock directory is on the volume"
