"""What this host offers a study, as data (``tuner doctor`` prints it as text or ``--json``):
topology, binding tools, fingerprint, runtimes, which built-in workloads can run in tuner's
own interpreter (their framework installed, or the extra to install), and each knob's
availability for each kind of target, the system knobs with their current values."""

from __future__ import annotations

import sys
from typing import Any

from tuner.execution.runtimes import names as runtime_names
from tuner.host import Host, fingerprint, format_cpu_list
from tuner.knobs import KnobContext, Target, catalogue, system_knobs
from tuner.knobs.system import system_status
from tuner.settings import Settings
from tuner.space.workload import missing_framework
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import WorkloadSpec

#: The targets knobs are listed for: a label and the target.
TARGETS = (("built-in workloads (runtime tensorflow)", Target(builtin=BUILTINS["resnet"])),
           ("built-in workloads (runtime torch)", Target(builtin=BUILTINS["torch_resnet"])),
           ("commands, runtime: tensorflow", Target(builtin=None, runtime="tensorflow")),
           ("commands, runtime: torch", Target(builtin=None, runtime="torch")),
           ("commands, runtime: openmp", Target(builtin=None, runtime="openmp")),
           ("commands, runtime: native (the default)", Target(builtin=None, runtime="native")))


def host_report(host: Host, settings: Settings) -> dict[str, Any]:
    """Everything ``tuner doctor`` shows, JSON-ready."""
    topo = host.topology
    return {
        "cpu": {"model": topo.model, "sockets": len(topo.sockets), "numa_nodes": len(topo.nodes),
                "physical_cores": topo.physical_cores, "logical_cpus": topo.logical_cpus,
                "threads_per_core": topo.threads_per_core,
                "usable_cpus": format_cpu_list(topo.allowed),
                "nodes": {str(node): format_cpu_list(topo.cpus_of_node(node))
                          for node in topo.nodes}},
        "tools": {"numactl": host.tools.numactl, "taskset": host.tools.taskset},
        "fingerprint": fingerprint(host, cache_dir=settings.cache_dir).to_dict(),
        "runtimes": {"directory": str(settings.runtimes_dir),
                     "names": runtime_names(settings.runtimes_dir)},
        "builtin_workloads": builtin_workloads(),
        "knobs": {label: knob_rows(host, target) for label, target in TARGETS},
        "system_knobs": {"state_dir": str(settings.state_dir), "policy": settings.system_knobs,
                         "knobs": system_rows(host)},
    }


def builtin_workloads() -> dict[str, dict[str, Any]]:
    """Each built-in: its framework and whether tuner's own interpreter can run it."""
    rows: dict[str, dict[str, Any]] = {}
    for name, builtin in BUILTINS.items():
        reason = missing_framework(WorkloadSpec(builtin=name), Target(builtin=builtin))
        framework: str | None = builtin.runtime
        if builtin.framework_when == {}:
            framework = None
        elif builtin.framework_when:
            framework = f"{builtin.runtime} (with " + ", ".join(
                f"{key}: {value}" for key, value in builtin.framework_when.items()) + ")"
        rows[name] = {"framework": framework, "available": reason is None, "reason": reason,
                      "python": sys.executable}
    return rows


def knob_rows(host: Host, target: Target) -> dict[str, dict[str, Any]]:
    """Each catalogue knob (the system family aside) for ``target``: available, or why not,
    and the knob's note where it has one."""
    ctx = KnobContext(host=host, target=target)
    rows: dict[str, dict[str, Any]] = {}
    for name, knob in catalogue().items():
        if knob.family == "system":
            continue
        reason = knob.availability(ctx)
        rows[name] = {"available": reason is None, "reason": reason,
                      "note": knob.note(ctx) if reason is None else None}
    return rows


def system_rows(host: Host) -> dict[str, dict[str, Any]]:
    ctx = KnobContext(host=host, target=Target(builtin=None))
    return {name: {"current": current, "state": state}
            for name, current, state in system_status(ctx, system_knobs())}
