"""What machine this is: CPU topology from /sys and /proc, the binding tools present, and a
fingerprint of the environment recorded with every study, and ``exclusive_file_lock`` (the
``flock`` that the host lock and the study gate hold).

The probe reads files under a root directory (``/`` on a real host) so tests can describe a
2-socket, 56-core server with SMT as a fake tree and check every knob domain against it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path

from tuner.errors import HostError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, order=True)
class Cpu:
    """One logical CPU (hardware thread)."""

    id: int
    socket: int
    core: int
    node: int


@dataclass(frozen=True, kw_only=True)
class Topology:
    """Online logical CPUs with their socket, core and NUMA node, and the CPU's identity."""

    cpus: tuple[Cpu, ...]
    allowed: frozenset[int]
    model: str
    flags: frozenset[str] = field(default_factory=frozenset)
    #: /proc/cpuinfo's ``vendor_id``, ``cpu family`` and ``model`` (-1: not given): what
    #: model-specific settings (the prefetcher registers) are documented for.
    vendor: str = "unknown"
    family: int = -1
    model_number: int = -1

    @cached_property
    def sockets(self) -> list[int]:
        return sorted({c.socket for c in self.cpus})

    @cached_property
    def nodes(self) -> list[int]:
        return sorted({c.node for c in self.cpus})

    @cached_property
    def cores(self) -> list[tuple[Cpu, ...]]:
        """Physical cores in (socket, core id) order, each as its hardware threads by id."""
        by_core: dict[tuple[int, int], list[Cpu]] = {}
        for cpu in self.cpus:
            by_core.setdefault((cpu.socket, cpu.core), []).append(cpu)
        return [tuple(sorted(by_core[key])) for key in sorted(by_core)]

    @cached_property
    def usable_cores(self) -> list[tuple[Cpu, ...]]:
        """Physical cores whose first hardware thread this process may run on."""
        return [core for core in self.cores if core[0].id in self.allowed]

    @property
    def physical_cores(self) -> int:
        return len(self.usable_cores)

    @property
    def logical_cpus(self) -> int:
        return len([c for c in self.cpus if c.id in self.allowed])

    @property
    def threads_per_core(self) -> int:
        return max((len(core) for core in self.cores), default=1)

    def first_physical_cores(self, count: int, *, with_siblings: bool = False) -> list[int]:
        """The logical CPU ids of the first ``count`` usable physical cores (socket 0 first);
        one hardware thread per core unless ``with_siblings``."""
        if not 1 <= count <= self.physical_cores:
            raise HostError(
                f"asked for {count} physical cores; this host has {self.physical_cores}")
        chosen = self.usable_cores[:count]
        ids = [cpu.id for core in chosen for cpu in (core if with_siblings else core[:1])]
        return sorted(i for i in ids if i in self.allowed)

    def cpus_of_node(self, node: int) -> list[int]:
        return sorted(c.id for c in self.cpus if c.node == node and c.id in self.allowed)

    def nodes_of_socket(self, socket: int) -> list[int]:
        return sorted({c.node for c in self.cpus if c.socket == socket})

    def cores_of_socket(self, socket: int) -> int:
        return len([core for core in self.usable_cores if core[0].socket == socket])


@dataclass(frozen=True, kw_only=True)
class Tools:
    """Binding tools found on PATH (absolute paths), or None."""

    numactl: str | None
    taskset: str | None


@dataclass(frozen=True, kw_only=True)
class Host:
    topology: Topology
    tools: Tools
    #: False for a host that stands for machines not known here (``generic_host``): what
    #: only the machine that runs a study can check (its named runtimes) is left to it.
    local: bool = True
    #: Where /sys, /proc and /dev are (``/``; tests use a fake tree): the system knobs read
    #: and write under it.
    root: Path = Path("/")


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's list format, e.g. ``0-3,8,10-11``."""
    out: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def format_cpu_list(ids: Iterable[int]) -> str:
    """The inverse of ``parse_cpu_list``: ``[0, 1, 2, 5]`` -> ``0-2,5``."""
    ordered = sorted(set(ids))
    parts: list[str] = []
    start = prev = None
    for i in ordered:
        if start is None:
            start = prev = i
        elif prev is not None and i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if start != prev else f"{start}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if start != prev else f"{start}")
    return ",".join(parts)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace").strip()


def probe_topology(root: Path = Path("/"), *, allowed: Iterable[int] | None = None) -> Topology:
    """Read the topology under ``root`` (``/sys/devices/system/{cpu,node}``, /proc/cpuinfo).

    ``allowed`` defaults to this process's affinity mask on a real root, and to every online
    CPU on a fake one.
    """
    cpu_dir = root / "sys/devices/system/cpu"
    try:
        online = parse_cpu_list(_read(cpu_dir / "online"))
    except (OSError, ValueError) as exc:
        raise HostError(f"cannot read the online CPUs from {cpu_dir / 'online'}: {exc}") from exc
    node_of: dict[int, int] = {}
    node_dir = root / "sys/devices/system/node"
    if node_dir.is_dir():
        for entry in sorted(node_dir.glob("node[0-9]*")):
            node = int(entry.name[4:])
            try:
                for cpu_id in parse_cpu_list(_read(entry / "cpulist")):
                    node_of[cpu_id] = node
            except OSError:
                continue
    cpus: list[Cpu] = []
    for cpu_id in online:
        topo = cpu_dir / f"cpu{cpu_id}" / "topology"
        try:
            socket = int(_read(topo / "physical_package_id"))
            core = int(_read(topo / "core_id"))
        except (OSError, ValueError):
            socket, core = 0, cpu_id  # no topology files: treat every CPU as its own core
        cpus.append(Cpu(id=cpu_id, socket=max(socket, 0), core=core, node=node_of.get(cpu_id, 0)))
    info = _cpuinfo(root / "proc/cpuinfo")
    if allowed is None:
        allowed = os.sched_getaffinity(0) if root == Path("/") else online
    return Topology(cpus=tuple(cpus), allowed=frozenset(allowed) & frozenset(online),
                    model=info.get("model name") or "unknown",
                    flags=frozenset(info.get("flags", "").split()),
                    vendor=info.get("vendor_id") or "unknown",
                    family=_number(info.get("cpu family")), model_number=_number(info.get("model")))


def _cpuinfo(path: Path) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (every processor repeats them)."""
    fields: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip() and fields:
            break
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _number(text: str | None) -> int:
    try:
        return int(text) if text is not None else -1
    except ValueError:
        return -1


def probe_tools() -> Tools:
    return Tools(numactl=shutil.which("numactl"), taskset=shutil.which("taskset"))


def probe_host(root: Path = Path("/")) -> Host:
    return Host(topology=probe_topology(root), tools=probe_tools(), root=root)


@dataclass(frozen=True, kw_only=True)
class RuntimeFacts:
    """What a study's named runtime (``workload.python``) adds to its fingerprint, from the
    runtime's probe (``tuner.execution.runtimes``)."""

    #: The runtime's name, or its interpreter's path.
    label: str
    #: The interpreter.
    python: str
    python_version: str
    tensorflow: str
    #: TensorFlow's oneDNN threading: ``openmp`` (Intel's build), ``threadpool``, or "".
    onednn_threading: str
    torch: str
    #: PyTorch's ATen parallel backend (``OpenMP``, ...), or "".
    torch_parallel: str
    #: The OpenMP runtimes in its prefix (libgomp, libiomp5, libomp), comma-separated.
    openmp: str


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """The environment a measurement was taken in. Measurements from different host classes
    must never be mixed in one study."""

    cpu_model: str
    sockets: int
    physical_cores: int
    logical_cpus: int
    numa_nodes: int
    threads_per_core: int
    kernel: str
    python: str
    tensorflow: str
    onednn: str
    numactl: str
    #: The study's runtime (``workload.python``: its name or interpreter path); "" for
    #: tuner's own interpreter. With a runtime, ``python``, ``tensorflow`` and ``onednn``
    #: are the runtime's, and these say its builds and OpenMP library.
    runtime: str = ""
    onednn_threading: str = ""
    torch: str = ""
    torch_parallel: str = ""
    openmp: str = ""

    @property
    def host_class(self) -> str:
        """A short id of what makes timings comparable: CPU, core and NUMA layout, framework
        versions, and the runtime when the study names one (a study without one keeps the
        class it always had). Kernel and Python patch versions are recorded but do not
        split classes."""
        key: list[object] = [self.cpu_model, self.sockets, self.physical_cores,
                             self.logical_cpus, self.numa_nodes, self.tensorflow, self.onednn]
        if self.runtime:
            key += [self.runtime, self.onednn_threading, self.torch, self.torch_parallel,
                    self.openmp]
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]
        return f"{self.physical_cores}c{self.numa_nodes}n-{digest}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "host_class": self.host_class}


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def tensorflow_version() -> str:
    for dist in ("tensorflow-cpu", "tensorflow", "tensorflow-intel", "intel-tensorflow"):
        version = package_version(dist)
        if version != "not installed":
            return version
    return "not installed"


_ONEDNN_PROBE = (
    "import tensorflow as tf\n"
    "x = tf.ones([8, 8]); tf.nn.relu(tf.matmul(x, x)).numpy()\n"
)


def onednn_version(cache_dir: Path, python: str = sys.executable,
                   tf_version: str | None = None) -> str:
    """oneDNN's version as TensorFlow reports it with ONEDNN_VERBOSE=1 (cached per TF version,
    and per interpreter for a runtime's, whose ``tf_version`` its probe gave; the probe
    starts TensorFlow once, a few seconds)."""
    # a runtime's (its probe gave ``tf_version``) is cached per interpreter too
    tag = "" if tf_version is None else "-" + hashlib.sha256(python.encode()).hexdigest()[:10]
    tf_version = tf_version or tensorflow_version()
    if tf_version == "not installed":
        return "not installed"
    cache = cache_dir / f"onednn-{tf_version}{tag}.json"
    try:
        return str(json.loads(cache.read_text())["onednn"])
    except (OSError, ValueError, KeyError):
        pass
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    version = "unknown"
    try:
        proc = subprocess.run([python, "-c", _ONEDNN_PROBE], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        for line in (proc.stdout + proc.stderr).splitlines():
            if ",info,oneDNN v" in line:
                version = line.split("oneDNN v", 1)[1].split()[0]
                break
        else:
            version = "not used" if proc.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("oneDNN version probe failed: %s", exc)
        return version
    if version == "unknown":  # a failed probe is not cached: the next start probes again
        logger.warning("oneDNN version probe failed (exit status %d)", proc.returncode)
        return version
    try:  # written whole (several workers may start together on a fresh machine)
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({"onednn": version}))
        os.replace(partial, cache)
    except OSError:
        pass
    return version


def numactl_version(tools: Tools) -> str:
    if tools.numactl is None:
        return "missing"
    dpkg = shutil.which("dpkg-query")
    if dpkg:
        proc = subprocess.run([dpkg, "-W", "-f", "${Version}", "numactl"], capture_output=True,
                              text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return "present"


def fingerprint(host: Host, *, cache_dir: Path,
                runtime: RuntimeFacts | None = None) -> Fingerprint:
    """The fingerprint of a study measured on ``host``, in tuner's own interpreter or in
    ``runtime`` (``tuner.execution.runtimes.facts`` of the study's ``workload.python``)."""
    topo = host.topology
    if runtime is not None:
        return Fingerprint(
            cpu_model=topo.model, sockets=len(topo.sockets),
            physical_cores=topo.physical_cores, logical_cpus=topo.logical_cpus,
            numa_nodes=len(topo.nodes), threads_per_core=topo.threads_per_core,
            kernel=platform.release(), python=runtime.python_version,
            tensorflow=runtime.tensorflow,
            onednn=onednn_version(cache_dir, runtime.python, runtime.tensorflow),
            numactl=numactl_version(host.tools), runtime=runtime.label,
            onednn_threading=runtime.onednn_threading, torch=runtime.torch,
            torch_parallel=runtime.torch_parallel, openmp=runtime.openmp or "none")
    return Fingerprint(
        cpu_model=topo.model,
        sockets=len(topo.sockets),
        physical_cores=topo.physical_cores,
        logical_cpus=topo.logical_cpus,
        numa_nodes=len(topo.nodes),
        threads_per_core=topo.threads_per_core,
        kernel=platform.release(),
        python=platform.python_version(),
        tensorflow=tensorflow_version(),
        onednn=onednn_version(cache_dir),
        numactl=numactl_version(host.tools),
    )


def synthetic_topology(*, sockets: int, cores_per_socket: int, threads_per_core: int,
                       nodes_per_socket: int = 1, model: str = "synthetic") -> Topology:
    """A topology numbered the way Linux numbers a real one (first thread of every core on
    every socket, then the siblings), for benchmarks that model a machine this is not."""
    total = sockets * cores_per_socket
    cpus = []
    for cpu_id in range(total * threads_per_core):
        core_index = cpu_id % total
        socket, core = divmod(core_index, cores_per_socket)
        node = socket * nodes_per_socket + core * nodes_per_socket // cores_per_socket
        cpus.append(Cpu(id=cpu_id, socket=socket, core=core, node=node))
    return Topology(cpus=tuple(cpus), allowed=frozenset(c.id for c in cpus), model=model,
                    flags=frozenset({"avx512f", "avx512_bf16", "amx_bf16"}))


def generic_host() -> Host:
    """A generous machine (8 sockets of 64 cores, SMT, 16 NUMA nodes, numactl and taskset)
    for validating study files where the machine that will run them is not known (the API
    of a service whose workers run elsewhere; ``tuner validate --no-host``): names, types,
    parameters and shapes are all checked, and each worker checks again against its own
    host before it runs the study."""
    return Host(topology=synthetic_topology(sockets=8, cores_per_socket=64, threads_per_core=2,
                                            nodes_per_socket=2, model="generic"),
                tools=Tools(numactl="numactl", taskset="taskset"), local=False)


#: The ``exclusive_file_lock`` files this process holds: path -> [fd, depth, thread].
_held: dict[str, list[int]] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def exclusive_file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while inside.

    Re-entrant for the thread that holds it (a backend taking every node's lock for a system
    change wraps one that takes the nodes its CPUs sit on): ``flock`` itself would make
    the inner request wait on the outer forever. Other threads and processes wait."""
    key = os.path.abspath(path)
    me = threading.get_ident()
    with _held_guard:
        entry = _held.get(key)
        if entry is not None and entry[2] == me:
            entry[1] += 1
        else:
            entry = None
    if entry is not None:
        try:
            yield
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with _held_guard:
            _held[key] = [fd, 1, me]
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
