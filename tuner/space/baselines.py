"""The two baselines every study starts with, so its best can never be silently worse:

* ``defaults`` — the program as it runs today: the framework's own choices, each custom knob
  at its ``default:`` where the study gives one (the value the program needs or runs with
  today, e.g. a ``--threads`` flag it cannot start without) and every other knob unset (the
  study's fixed knobs apply too: they are part of the workload's definition);
* ``vendor`` — the vendor's recommendation for the workload's runtime (``Target``'s
  ``kind_of_runtime``), on top of the custom knobs' defaults:

  - ``tensorflow``: Intel's published recommendation for TensorFlow on Xeon: intra_op = the
    physical cores of the socket it is bound to, inter_op = the number of sockets,
    OMP_NUM_THREADS = intra_op, KMP_BLOCKTIME=1, KMP_AFFINITY=granularity=fine,compact,1,0;
  - ``openmp``: what Intel's launcher for OpenMP programs sets (``torch.backends.xeon.
    run_cpu``, contributed from Intel Extension for PyTorch's ``launch``/``ipexrun``:
    ``set_multi_thread_and_allocator`` sets OMP_NUM_THREADS = the cores per instance and,
    with Intel OpenMP, KMP_AFFINITY=granularity=fine,compact,1,0 and KMP_BLOCKTIME=1, and
    each instance runs under ``numactl -C <its physical cores> -m <their nodes>``):
    OMP_NUM_THREADS = the physical cores bound, KMP_AFFINITY=granularity=fine,compact,1,0,
    KMP_BLOCKTIME=1; no TF_* variable;
  - ``native``: only the binding; no TF_*, OMP_* or KMP_* variable;

  each bound to socket 0 (``numactl --cpunodebind=<socket 0's nodes> --membind=<same>``).

intra_op and OMP_NUM_THREADS count the cores of the bound socket rather than of the whole
machine: with the process bound to socket 0, a larger pool only oversubscribes those cores.
On a one-socket host the two readings agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.host import format_cpu_list
from tuner.knobs.base import UNSET, KnobContext, Runtime
from tuner.spec.models import BaselineName, StudySpec

#: How reports name the baselines.
ROLE_LABELS = {"defaults": "framework defaults", "vendor": "vendor settings"}

#: Intel OpenMP's compact placement: one thread per core, neighbours on neighbouring cores.
COMPACT = "granularity=fine,compact,1,0"


def runtime_recipe(runtime: Runtime, *, cores: int, sockets: int) -> dict[str, Any]:
    """The thread settings of the vendor baseline for ``runtime``, ``cores`` being the
    physical cores it is bound to (see the module)."""
    if runtime == "tensorflow":
        return {"intra_op": cores, "inter_op": sockets, "OMP_NUM_THREADS": cores,
                "KMP_BLOCKTIME": 1, "KMP_AFFINITY": COMPACT}
    if runtime == "openmp":
        return {"OMP_NUM_THREADS": cores, "KMP_BLOCKTIME": 1, "KMP_AFFINITY": COMPACT}
    return {}


def vendor_recipe(ctx: KnobContext, *, tuned_or_fixed: set[str]) -> dict[str, Any]:
    """The vendor settings on this host, by knob name: the runtime's thread settings, then
    the binding to socket 0. CPU binding is expressed through the knob the study uses
    (``physcpubind`` as socket 0's first cores, else ``cpunodebind``)."""
    topo = ctx.host.topology
    socket0 = topo.sockets[0]
    cores = topo.cores_of_socket(socket0)
    nodes = topo.nodes_of_socket(socket0)
    node_value: Any = nodes[0] if len(nodes) == 1 else format_cpu_list(nodes)
    recipe = runtime_recipe(ctx.target.kind_of_runtime, cores=cores,
                            sockets=len(topo.sockets))
    if "physcpubind" in tuned_or_fixed and "cpunodebind" not in tuned_or_fixed:
        recipe["physcpubind"] = cores
    else:
        recipe["cpunodebind"] = node_value
    recipe["membind"] = node_value
    return recipe


def custom_defaults(spec: StudySpec, *, fixed: set[str] | frozenset[str] = frozenset()
                    ) -> dict[str, Any]:
    """Each custom knob's ``default:`` (the value the program runs with today), by knob name
    (validation keeps ``default`` to custom knobs: env, flag and placeholder knobs); knobs
    without one, and fixed knobs (which every trial applies anyway), are left out."""
    return {name: entry.default for name, entry in spec.knobs.items()
            if entry.default is not None and entry.default != UNSET and name not in fixed}


def baseline_values(name: BaselineName, ctx: KnobContext, *, tuned_or_fixed: set[str],
                    defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the baseline applies, by knob name: ``defaults`` (the custom knobs' defaults,
    ``custom_defaults``) for both, and the vendor recipe on top for the vendor."""
    values = dict(defaults or {})
    if name == "vendor":
        values.update(vendor_recipe(ctx, tuned_or_fixed=tuned_or_fixed))
    return values
