"""The two baselines every study starts with, so its best can never be silently worse:

* ``defaults`` — nothing set: the framework's own choices (and the study's fixed knobs,
  which are part of the workload's definition);
* ``vendor`` — Intel's published recommendation for TensorFlow on Xeon: intra_op = the
  physical cores of the socket it is bound to, inter_op = the number of sockets,
  OMP_NUM_THREADS = intra_op, KMP_BLOCKTIME=1, KMP_AFFINITY=granularity=fine,compact,1,0,
  and the process bound to socket 0 (``numactl --cpunodebind=<socket 0's nodes>
  --membind=<same>``).

intra_op counts the cores of the bound socket rather than of the whole machine: with the
process bound to socket 0, a larger pool only oversubscribes those cores. On a one-socket
host the two readings agree.
"""

from __future__ import annotations

from typing import Any

from tuner.host import format_cpu_list
from tuner.knobs.base import KnobContext
from tuner.spec.models import BaselineName

#: How reports name the baselines.
ROLE_LABELS = {"defaults": "framework defaults", "vendor": "vendor settings"}


def vendor_recipe(ctx: KnobContext, *, tuned_or_fixed: set[str]) -> dict[str, Any]:
    """The vendor settings on this host, by knob name. CPU binding is expressed through the
    knob the study uses (``physcpubind`` as socket 0's first cores, else ``cpunodebind``)."""
    topo = ctx.host.topology
    socket0 = topo.sockets[0]
    cores = topo.cores_of_socket(socket0)
    nodes = topo.nodes_of_socket(socket0)
    node_value: Any = nodes[0] if len(nodes) == 1 else format_cpu_list(nodes)
    recipe: dict[str, Any] = {
        "intra_op": cores,
        "inter_op": len(topo.sockets),
        "OMP_NUM_THREADS": cores,
        "KMP_BLOCKTIME": 1,
        "KMP_AFFINITY": "granularity=fine,compact,1,0",
    }
    if "physcpubind" in tuned_or_fixed and "cpunodebind" not in tuned_or_fixed:
        recipe["physcpubind"] = cores
    else:
        recipe["cpunodebind"] = node_value
    recipe["membind"] = node_value
    return recipe


def baseline_values(name: BaselineName, ctx: KnobContext, *,
                    tuned_or_fixed: set[str]) -> dict[str, Any]:
    """What the baseline applies, by knob name (empty for the defaults)."""
    if name == "defaults":
        return {}
    return vendor_recipe(ctx, tuned_or_fixed=tuned_or_fixed)
