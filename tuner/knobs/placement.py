"""CPU and memory placement through numactl (taskset or sched_setaffinity as fallbacks).

``physcpubind`` binds to "the first N physical cores" (an integer; socket 0 first, one
hardware thread per core unless ``siblings: true``) or to an explicit CPU list such as
``"0-3,28-31"``. ``cpunodebind`` binds to the CPUs of NUMA nodes, ``membind`` allocates
memory on nodes (or ``local``/``interleave``). Every value is checked against the host's
topology, so a core or node that does not exist can never be sampled.
"""

from __future__ import annotations

from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.host import format_cpu_list, parse_cpu_list
from tuner.knobs.base import (
    UNSET,
    ChoiceDomain,
    Domain,
    DomainError,
    IntDomain,
    IntKnob,
    Knob,
    KnobContext,
)
from tuner.spec.models import KnobSpec

NO_NUMACTL = "numactl is not installed: CPU binding falls back to taskset/sched_setaffinity"


def _node_list(value: Any, ctx: KnobContext, field: str) -> list[int]:
    nodes = ctx.host.topology.nodes
    try:
        ids = [value] if isinstance(value, int) and not isinstance(value, bool) else (
            parse_cpu_list(str(value)))
    except ValueError:
        raise DomainError(f"expected a node id or list such as 0 or '0,1', got {value!r}",
                          field=field) from None
    missing = [n for n in ids if n not in nodes]
    if not ids or missing:
        shown = format_cpu_list(missing) if missing else repr(value)
        raise DomainError(f"node {shown} does not exist on this host "
                          f"(NUMA nodes: {format_cpu_list(nodes)})", field=field)
    return ids


class PhysCpuBind(IntKnob):
    name = "physcpubind"
    family = "placement"
    summary = ("bind to the first N physical cores (integer) or an explicit CPU list "
               "('0-3,28-31'): numactl --physcpubind")

    def __init__(self, *, siblings: bool = False) -> None:
        self.siblings = siblings

    def _check_value(self, value: Any, ctx: KnobContext, field: str) -> None:
        topo = ctx.host.topology
        if value == UNSET:
            return
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= topo.physical_cores:
                raise DomainError(f"{value} cores requested; this host has "
                                  f"{topo.physical_cores} physical cores", field=field)
            return
        if not isinstance(value, str):
            raise DomainError(f"expected a core count or a CPU list string, got {value!r}",
                              field=field)
        try:
            cpus = parse_cpu_list(value)
        except ValueError:
            raise DomainError(f"expected a CPU list such as '0-3,8', got {value!r}",
                              field=field) from None
        bad = sorted(set(cpus) - topo.allowed)
        if not cpus or bad:
            raise DomainError(f"CPU {format_cpu_list(bad) or value} is not online or not "
                              f"allowed here (usable: {format_cpu_list(topo.allowed)})",
                              field=field)

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return IntDomain(1, ctx.host.topology.physical_cores)

    def cpus_for(self, value: Any, ctx: KnobContext) -> list[int]:
        if isinstance(value, int):
            return ctx.host.topology.first_physical_cores(value, with_siblings=self.siblings)
        return parse_cpu_list(str(value))

    def default_value(self, ctx: KnobContext) -> Any:
        return ctx.host.topology.physical_cores

    def note(self, ctx: KnobContext) -> str | None:
        return None if ctx.host.tools.numactl else NO_NUMACTL

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value != UNSET:
            builder.bind_cpus(self.cpus_for(value, ctx))


class CpuNodeBind(Knob):
    name = "cpunodebind"
    family = "placement"
    summary = "run on the CPUs of NUMA node(s) (0, '0,1'; unset: anywhere): numactl --cpunodebind"

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        nodes = ctx.host.topology.nodes
        if spec.kind == "auto":
            return ChoiceDomain(tuple(nodes) + (UNSET,) if len(nodes) > 1 else (UNSET,))
        if spec.kind == "range":
            assert spec.low is not None and spec.high is not None
            for field, bound in (("low", spec.low), ("high", spec.high)):
                _node_list(bound, ctx, field)
            return IntDomain(spec.low, spec.high, spec.step or 1)
        values = spec.listed()
        for value in values:
            if value != UNSET:
                _node_list(value, ctx, spec.kind)
        return ChoiceDomain(tuple(values))

    def note(self, ctx: KnobContext) -> str | None:
        return None if ctx.host.tools.numactl else NO_NUMACTL

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET:
            return
        nodes = _node_list(value, ctx, "")
        cpus = [c for n in nodes for c in ctx.host.topology.cpus_of_node(n)]
        builder.bind_cpu_nodes(nodes, cpus)


class MemBind(Knob):
    name = "membind"
    family = "placement"
    summary = ("where memory is allocated: node(s) (numactl --membind), local (--localalloc), "
               "interleave (--interleave=all); unset: the kernel's default")
    words = {"local": "--localalloc", "interleave": "--interleave=all"}

    def availability(self, ctx: KnobContext) -> str | None:
        if ctx.host.tools.numactl is None:
            return "numactl is not installed: memory binding is unavailable (apt install numactl)"
        return None

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        nodes = ctx.host.topology.nodes
        if spec.kind == "auto":
            extra = ("interleave", UNSET) if len(nodes) > 1 else (UNSET,)
            return ChoiceDomain(tuple(nodes) + extra if len(nodes) > 1 else extra)
        if spec.kind == "range":
            raise DomainError("membind takes node ids, 'local' or 'interleave' as choices")
        values = spec.listed()
        for value in values:
            if value != UNSET and value not in self.words:
                _node_list(value, ctx, spec.kind)
        return ChoiceDomain(tuple(values))

    def option(self, value: Any, ctx: KnobContext) -> str | None:
        if value == UNSET:
            return None
        if value in self.words:
            return self.words[value]
        return f"--membind={','.join(map(str, _node_list(value, ctx, '')))}"

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        option = self.option(value, ctx)
        if option:
            builder.bind_memory(option)


class Instances(IntKnob):
    """Concurrent copies of the workload on disjoint cores: the cores the study binds to (or
    all usable cores) are split into N equal groups of whole physical cores, each copy bound
    to one group; the trial's throughput is the sum of the copies'."""

    name = "instances"
    family = "placement"
    summary = ("run N copies at once, each bound to its own equal share of the cores; "
               "throughputs add up (the multi-instance recipe for throughput)")
    minimum = 1
    allow_unset = False

    def maximum(self, ctx: KnobContext) -> int | None:
        return ctx.host.topology.physical_cores

    def limit_reason(self, ctx: KnobContext, limit: int) -> str:
        return f"each instance needs a physical core; this host has {limit}"

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return IntDomain(1, max(1, min(8, ctx.host.topology.physical_cores)))

    def default_value(self, ctx: KnobContext) -> Any:
        return 1

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        builder.instances = int(value)


def placement_knobs(spec: KnobSpec | None = None) -> list[Knob]:
    return [PhysCpuBind(siblings=bool(spec and spec.siblings)), CpuNodeBind(), MemBind(),
            Instances()]
