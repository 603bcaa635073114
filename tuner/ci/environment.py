"""The environment a ci run measures in, and what changed since the previous result.

The environment is the study's fingerprint (CPU, cores, NUMA layout, kernel, Python, the
framework builds and OpenMP library of its runtime) with three facts a fingerprint does not
split host classes on but an upgrade is often made of: the CPU's microcode, tuner's own
version, and the workload's version where the study says how to ask for it
(``ci.version_command``: an argument list, run without a shell, with the trial's scrubbed
environment)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tuner.host import Fingerprint, package_version

#: How reports name the fields of an environment; fields not listed are named as stored.
LABELS = {
    "cpu_model": "CPU model", "microcode": "CPU microcode", "sockets": "sockets",
    "physical_cores": "physical cores", "logical_cpus": "logical CPUs",
    "numa_nodes": "NUMA nodes", "threads_per_core": "threads per core", "kernel": "kernel",
    "python": "Python", "tensorflow": "TensorFlow", "onednn": "oneDNN",
    "onednn_threading": "oneDNN threading", "torch": "PyTorch",
    "torch_parallel": "PyTorch parallel backend", "openmp": "OpenMP library",
    "numactl": "numactl", "runtime": "runtime", "tuner": "tuner",
    "workload_version": "workload version",
}
#: Derived from the others (a digest), never reported as a change of its own.
DERIVED = frozenset({"host_class"})
VERSION_TIMEOUT = 30.0
VERSION_CHARS = 200


@dataclass(frozen=True)
class Change:
    field: str
    then: str
    now: str

    @property
    def label(self) -> str:
        return LABELS.get(self.field, self.field)

    def __str__(self) -> str:
        return f"{self.label} {self.then or 'none'} -> {self.now or 'none'}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "label": self.label, "then": self.then, "now": self.now}


def microcode(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The microcode revision of the first CPU ("unknown" where the kernel does not say:
    some VMs hide it)."""
    try:
        with cpuinfo.open() as lines:
            for line in lines:
                if line.startswith("microcode"):
                    return line.partition(":")[2].strip() or "unknown"
    except OSError:
        pass
    return "unknown"


def workload_version(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The first line ``argv`` prints (stdout, else stderr), or why there is none."""
    try:
        proc = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    for stream in (proc.stdout, proc.stderr):
        line = next((s.strip() for s in stream.splitlines() if s.strip()), "")
        if line:
            return line[:VERSION_CHARS]
    return f"unknown (exit status {proc.returncode}, no output)"


def environment_of(fingerprint: Fingerprint | Mapping[str, object], *,
                   version: str | None = None) -> dict[str, str]:
    """Every fact of the environment as text: the fingerprint's, the microcode, tuner's
    version and, when given, the workload's."""
    facts = fingerprint.to_dict() if isinstance(fingerprint, Fingerprint) else fingerprint
    out = {key: str(value) for key, value in facts.items()}
    out["microcode"] = microcode()
    out["tuner"] = package_version("tuner")
    if version is not None:
        out["workload_version"] = version
    return out


def changes(then: Mapping[str, object], now: Mapping[str, object]) -> list[Change]:
    """The facts that differ, among those both environments recorded (one recorded by an
    older tuner may lack some: a missing fact is not a change)."""
    found = []
    for key in now:
        if key in DERIVED or key not in then:
            continue
        before, after = str(then[key]), str(now[key])
        if before != after:
            found.append(Change(field=key, then=before, now=after))
    return found
