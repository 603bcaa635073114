"""Dependent knobs, so that the space is valid by construction: no trial is spent on a
configuration that cannot run as intended.

* ``instances`` copies each need at least one whole core of the binding, and, with
  ``threads_within_binding`` (the default), enough cores for the smallest ``intra_op``.
* With ``threads_within_binding``, ``intra_op``, ``OMP_NUM_THREADS`` and ``torch_threads``
  are at most the hardware threads each instance is bound to (a thread pool larger than its
  cores only oversubscribes them).
* ``physcpubind: {follow: intra_op}`` sizes the binding to the thread count: each instance
  gets ``intra_op`` physical cores, so ``intra_op x instances`` is at most the cores.

Placement knobs are sampled first; the range of a dependent integer knob is then narrowed
for that trial (Optuna allows a range to differ per trial, not a categorical's choices, so a
dependent knob needs a range). Domains are also narrowed up front so that every placement
value that can be sampled leaves at least one valid value for the knobs after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from tuner.host import Host, parse_cpu_list
from tuner.knobs import UNSET, ChoiceDomain, Domain, IntDomain
from tuner.spec.consistency import Problem

PLACEMENT = ("cpunodebind", "physcpubind", "instances")
THREAD_KNOBS = ("intra_op", "OMP_NUM_THREADS", "torch_threads")


@dataclass(frozen=True, kw_only=True)
class Constraints:
    host: Host
    threads_within_binding: bool
    follow: str | None = None
    siblings: bool = False

    def cores_and_threads(self, place: Mapping[str, Any]) -> tuple[int, int]:
        """Physical cores the trial is bound to, and hardware threads per core in it."""
        topo = self.host.topology
        bind = place.get("physcpubind", UNSET)
        if self.follow is None and isinstance(bind, int):
            return bind, (topo.threads_per_core if self.siblings else 1)
        if self.follow is None and isinstance(bind, str) and bind != UNSET:
            cpus = set(parse_cpu_list(bind))
            cores = [core for core in topo.cores if any(c.id in cpus for c in core)]
            return len(cores), max(1, len(cpus) // max(1, len(cores)))
        nodes = place.get("cpunodebind", UNSET)
        if nodes != UNSET:
            wanted = {nodes} if isinstance(nodes, int) else set(parse_cpu_list(str(nodes)))
            cores = [core for core in topo.usable_cores if core[0].node in wanted]
            return len(cores), topo.threads_per_core
        tpc = (topo.threads_per_core if self.siblings else 1) if self.follow else (
            topo.threads_per_core)
        return topo.physical_cores, tpc

    def instances(self, place: Mapping[str, Any]) -> int:
        value = place.get("instances", UNSET)
        return int(value) if isinstance(value, int) else 1

    def need_cores(self, thread_low: int, tpc: int) -> int:
        """Cores one instance needs for the smallest thread count."""
        if not self.threads_within_binding and self.follow is None:
            return 1
        return max(1, math.ceil(thread_low / tpc))

    def cap(self, name: str, place: Mapping[str, Any], thread_low: int) -> int | None:
        """Upper bound of ``name`` given the placement values of this trial."""
        cores, tpc = self.cores_and_threads(place)
        if name == "instances":
            return cores // self.need_cores(thread_low, tpc)
        if name in THREAD_KNOBS and (self.threads_within_binding or name == self.follow):
            per_instance = cores // self.instances(place)
            return per_instance * tpc if name != self.follow else per_instance
        return None


def narrow(domain: Domain, high: int | None) -> Domain | None:
    """``domain`` without values above ``high`` (None if nothing is left)."""
    if high is None:
        return domain
    if isinstance(domain, IntDomain):
        if high < domain.low:
            return None
        top = domain.low + (min(domain.high, high) - domain.low) // domain.step * domain.step
        return IntDomain(domain.low, top, domain.step)
    kept = tuple(c for c in domain.choices if not isinstance(c, int) or c <= high)
    return ChoiceDomain(kept) if kept else None


def thread_low(domains: Mapping[str, Domain], fixed: Mapping[str, Any]) -> int:
    """The smallest thread count the trial can ask for (1 if no thread knob is tuned)."""
    lows = []
    for name in THREAD_KNOBS:
        if name in domains:
            values = [v for v in domains[name].values() if isinstance(v, int)]
            lows.append(min(values) if values else 1)
        elif isinstance(fixed.get(name), int):
            lows.append(int(fixed[name]))
    return max(lows, default=1)


def valid_count(constraints: Constraints, domains: Mapping[str, Domain],
                fixed: Mapping[str, Any]) -> int:
    """How many configurations of the tuned knobs are valid (the grid of the valid space)."""
    low = thread_low(domains, fixed)
    placement = [n for n in PLACEMENT if n in domains]
    others = [n for n in domains if n not in PLACEMENT]
    free = math.prod(domains[n].size for n in others if n not in THREAD_KNOBS)
    total = 0
    for combo in product(*(domains[n].values() for n in placement)):
        place = {**fixed, **dict(zip(placement, combo, strict=True))}
        count = 1
        for name in [n for n in placement if n == "instances"]:
            cap = constraints.cap(name, place, low)
            if cap is not None and place[name] > cap:
                count = 0
        for name in [n for n in others if n in THREAD_KNOBS]:
            narrowed = narrow(domains[name], constraints.cap(name, place, low))
            count *= narrowed.size if narrowed else 0
        total += count
    return total * free


def _placements(domains: Mapping[str, Domain], fixed: Mapping[str, Any],
                names: tuple[str, ...]) -> list[dict[str, Any]]:
    tuned = [n for n in names if n in domains]
    combos = product(*(domains[n].values() for n in tuned))
    return [{**fixed, **dict(zip(tuned, combo, strict=True))} for combo in combos]


def narrow_domains(constraints: Constraints, domains: dict[str, Domain],
                   fixed: Mapping[str, Any]) -> list[Problem]:
    """Narrow placement, instance and thread domains in place so that every value left has
    a valid continuation. Returns problems for domains with nothing valid left."""
    problems: list[Problem] = []
    low = thread_low(domains, fixed)
    for name in ("cpunodebind", "physcpubind"):
        if name not in domains:
            continue
        keep = []
        for value in domains[name].values():
            cores, tpc = constraints.cores_and_threads({name: value})
            if cores >= constraints.need_cores(low, tpc):
                keep.append(value)
        narrowed = _keep(domains[name], keep)
        if narrowed is None:
            problems.append((("knobs", name), f"no value leaves room for {low} threads"))
            continue
        domains[name] = narrowed
    if "instances" in domains:
        caps = [constraints.cap("instances", place, low)
                for place in _placements(domains, fixed, ("cpunodebind", "physcpubind"))]
        narrowed = narrow(domains["instances"], max(c for c in caps if c is not None))
        if narrowed is None:
            problems.append((("knobs", "instances"),
                             f"even the smallest instance count leaves no instance room for "
                             f"{low} threads on the cores bound"))
        else:
            domains["instances"] = narrowed
    for name in THREAD_KNOBS:
        if name not in domains:
            continue
        caps = [constraints.cap(name, place, low)
                for place in _placements(domains, fixed, PLACEMENT)]
        known = [c for c in caps if c is not None]
        if not known:
            continue
        narrowed = narrow(domains[name], max(known))
        if narrowed is None:
            problems.append((("knobs", name), f"every value exceeds the {max(known)} hardware "
                                              "threads the binding allows (threads_within_"
                                              "binding); lower it or set threads_within_"
                                              "binding: false"))
            continue
        if isinstance(narrowed, ChoiceDomain) and min(known) < max(
                v for v in narrowed.values() if isinstance(v, int)):
            problems.append((("knobs", name), "depends on the binding (threads_within_"
                                              "binding), so it needs a range {low, high, "
                                              "step}: Optuna cannot shrink a list of choices "
                                              "per trial"))
            continue
        domains[name] = narrowed
    return problems


def _keep(domain: Domain, values: list[Any]) -> Domain | None:
    if not values:
        return None
    if isinstance(domain, IntDomain):
        return IntDomain(min(values), domain.high if domain.high in values else max(values),
                         domain.step)
    return ChoiceDomain(tuple(values))
