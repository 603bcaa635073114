"""Shared fixtures: a fake 2-socket host tree, hosts, study files, the fake workload."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tuner.host import Host, Tools, probe_topology

# tuner's system-settings journal (every `tuner` command looks for a left-over one) lives in
# a folder of the test run's own, not in the host's /var/lib/tuner
if "TUNER_STATE_DIR" not in os.environ:
    os.environ["TUNER_STATE_DIR"] = tempfile.mkdtemp(prefix="tuner-test-state-")
    atexit.register(shutil.rmtree, os.environ["TUNER_STATE_DIR"], ignore_errors=True)

#: The most parallel workers ``-n auto`` starts: each test may start real TensorFlow
#: processes sized to the whole machine, so more workers than this only compete for it.
MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per CPU tuner may use, at most ``MAX_WORKERS``."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
FAKE_WORKLOAD = str(PROGRAMS / "fake_workload.py")
PYTHON = sys.executable
#: Screenshots of the browser tests.
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def reported_settings(stdout: str) -> dict[str, Any]:
    """The SETTINGS line a workload printed, parsed."""
    line = next(x for x in stdout.splitlines() if x.startswith("SETTINGS "))
    return dict(json.loads(line[len("SETTINGS "):]))


def final_throughput(stdout: str) -> float:
    line = next(x for x in stdout.splitlines() if x.startswith("FINAL "))
    return float(line.split("throughput=")[1].split()[0])


def make_sys_tree(root: Path, *, sockets: int, cores_per_socket: int, threads_per_core: int,
                  nodes_per_socket: int = 1, model: str = "Intel(R) Xeon(R) Platinum 8180") -> Path:
    """Write a Linux-style /sys and /proc/cpuinfo describing a machine. CPU ids follow the
    kernel's usual numbering: first thread of every core on every socket, then siblings."""
    cpu_dir = root / "sys/devices/system/cpu"
    node_dir = root / "sys/devices/system/node"
    total_cores = sockets * cores_per_socket
    n_cpus = total_cores * threads_per_core
    node_cpus: dict[int, list[int]] = {}
    for cpu in range(n_cpus):
        thread, core_index = divmod(cpu, total_cores)
        socket, core = divmod(core_index, cores_per_socket)
        node = socket * nodes_per_socket + core * nodes_per_socket // cores_per_socket
        topo = cpu_dir / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{socket}\n")
        (topo / "core_id").write_text(f"{core}\n")
        siblings = [core_index + t * total_cores for t in range(threads_per_core)]
        (topo / "thread_siblings_list").write_text(",".join(map(str, siblings)) + "\n")
        node_cpus.setdefault(node, []).append(cpu)
    (cpu_dir / "online").write_text(f"0-{n_cpus - 1}\n")
    for node, cpus in node_cpus.items():
        (node_dir / f"node{node}").mkdir(parents=True)
        (node_dir / f"node{node}" / "cpulist").write_text(",".join(map(str, cpus)) + "\n")
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(
        "".join(f"processor\t: {c}\nmodel name\t: {model}\nflags\t\t: fpu avx512f avx512_bf16\n\n"
                for c in range(n_cpus)))
    return root


@pytest.fixture
def xeon_root(tmp_path: Path) -> Path:
    """A 2-socket, 28-core-per-socket Xeon with SMT: 56 cores, 112 CPUs, 2 NUMA nodes."""
    return make_sys_tree(tmp_path / "xeon", sockets=2, cores_per_socket=28, threads_per_core=2)


@pytest.fixture
def xeon(xeon_root: Path) -> Host:
    return Host(topology=probe_topology(xeon_root),
                tools=Tools(numactl="/usr/bin/numactl", taskset="/usr/bin/taskset"))


@pytest.fixture
def xeon_no_numactl(xeon_root: Path) -> Host:
    return Host(topology=probe_topology(xeon_root),
                tools=Tools(numactl=None, taskset="/usr/bin/taskset"))


@pytest.fixture
def local_host() -> Host:
    from tuner.host import probe_host

    return probe_host()


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[[str], Path]:
    counter = iter(range(10_000))

    def write(text: str) -> Path:
        path = tmp_path / f"study{next(counter)}.yaml"
        path.write_text(text)
        return path
    return write


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tuner's caches and outputs inside the test's directory."""
    from tuner.settings import get_settings

    monkeypatch.setenv("TUNER_CACHE_DIR", str(Path.home() / ".cache" / "tuner"))
    monkeypatch.setenv("TUNER_OUTPUT_DIR", str(tmp_path / "tuner-out"))
    monkeypatch.setenv("TUNER_DEFAULT_STORAGE", f"sqlite:///{tmp_path / 'tuner.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def finished_storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding the study ``finished`` (run once per test session)."""
    from tests.serving import run_finished_study

    workdir = tmp_path_factory.mktemp("finished")
    storage = f"sqlite:///{workdir / 'service.db'}"
    run_finished_study(storage, workdir)
    return storage


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a real ``tuner serve`` process; yields a function returning its base URL."""
    from tests.serving import start_server, stop_servers

    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> str:
        return start_server(procs, tmp_path, *args, env=env)

    yield start
    stop_servers(procs)


def rewrite_attrs(storage: str, study: str, attrs: dict[str, object],
                  trials: int | None = None) -> None:
    """Set user attributes of the (first ``trials``) trials of ``study`` in the database."""
    with sqlite3.connect(storage.removeprefix("sqlite:///")) as db:
        ids = [row[0] for row in db.execute(
            "SELECT trial_id FROM trials JOIN studies USING (study_id) WHERE study_name = ? "
            "ORDER BY number", (study,))][:trials]
        assert ids
        for trial_id in ids:
            for key, value in attrs.items():
                db.execute("DELETE FROM trial_user_attributes WHERE trial_id = ? AND key = ?",
                           (trial_id, key))
                db.execute("INSERT INTO trial_user_attributes (trial_id, key, value_json) "
                           "VALUES (?, ?, ?)", (trial_id, key, json.dumps(value)))


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Selenium (the browser tests)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("headless Chromium is needed: apt-get install chromium chromium-driver "
                    "(.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
