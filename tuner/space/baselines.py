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
  - ``torch``: what PyTorch's launcher does on this host (``torch/backends/xeon/run_cpu.py``,
    ``_Launcher.set_multi_thread_and_allocator``): Intel's OpenMP runtime preloaded where
    it is found (``omp_runtime=intel``) with KMP_AFFINITY=granularity=fine,compact,1,0 and
    KMP_BLOCKTIME=1; else the GNU runtime torch links, with OMP_SCHEDULE=static and
    OMP_PROC_BIND=close (Intel Extension for PyTorch's launcher, which run_cpu was taken
    from: ``intel_extension_for_pytorch/cpu/launch/launcher_base.py``, ``set_omp_runtime``;
    run_cpu itself sets neither); the allocator tcmalloc, else jemalloc, else glibc's
    (``set_memory_allocator``'s default); OMP_NUM_THREADS = torch_threads = the physical
    cores bound (torch_threads only for the built-ins, whose flag it is);
  - ``native``: only the binding; no TF_*, OMP_* or KMP_* variable;

  each bound to socket 0 (``numactl --cpunodebind=<socket 0's nodes> --membind=<same>``).

The recipe holds only knobs this workload can apply (no torch_threads for a PyTorch
command; no preload whose library is missing). It may name knobs the study does not tune:
``SearchSpace.launch`` applies every catalogue knob by name, so the baseline runs the full
recipe whatever the study tunes (and a tuned knob's domain grows to hold the recipe's
value). The ``openmp`` recipe does not preload: run_cpu is PyTorch's launcher, where
Intel's runtime and the allocators are tested drop-ins for torch's; for any other OpenMP
program, swapping the runtime or the allocator under it changes the program, so a study
that wants it tunes ``omp_runtime``/``allocator`` and measures it.

intra_op and OMP_NUM_THREADS count the cores of the bound socket rather than of the whole
machine: with the process bound to socket 0, a larger pool only oversubscribes those cores.
On a one-socket host the two readings agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.host import format_cpu_list
from tuner.knobs import catalogue
from tuner.knobs.base import UNSET, KnobContext, Runtime
from tuner.knobs.preload import PreloadKnob
from tuner.spec.models import BaselineName, StudySpec

#: How reports name the baselines.
ROLE_LABELS = {"defaults": "framework defaults", "vendor": "vendor settings"}

#: Intel OpenMP's compact placement: one thread per core, neighbours on neighbouring cores.
COMPACT = "granularity=fine,compact,1,0"


#: The allocators the torch recipe prefers, in run_cpu's order (``set_memory_allocator``).
ALLOCATOR_PREFERENCE = ("tcmalloc", "jemalloc")


def runtime_recipe(runtime: Runtime, *, cores: int, sockets: int, intel_openmp: bool = False,
                   allocator: str | None = None) -> dict[str, Any]:
    """The thread settings of the vendor baseline for ``runtime``, ``cores`` being the
    physical cores it is bound to (see the module). For ``torch``: ``intel_openmp`` whether
    Intel's OpenMP runtime can be preloaded here, ``allocator`` the allocator to preload
    (None: glibc's)."""
    if runtime == "tensorflow":
        return {"intra_op": cores, "inter_op": sockets, "OMP_NUM_THREADS": cores,
                "KMP_BLOCKTIME": 1, "KMP_AFFINITY": COMPACT}
    if runtime == "openmp":
        return {"OMP_NUM_THREADS": cores, "KMP_BLOCKTIME": 1, "KMP_AFFINITY": COMPACT}
    if runtime == "torch":
        recipe: dict[str, Any] = {"torch_threads": cores, "OMP_NUM_THREADS": cores}
        if intel_openmp:
            recipe.update({"omp_runtime": "intel", "KMP_AFFINITY": COMPACT,
                           "KMP_BLOCKTIME": 1})
        else:
            recipe.update({"OMP_SCHEDULE": "static", "OMP_PROC_BIND": "close"})
        if allocator is not None:
            recipe["allocator"] = allocator
        return recipe
    return {}


def _preloadable(knob: object, choice: str, ctx: KnobContext) -> bool:
    return (isinstance(knob, PreloadKnob) and knob.availability(ctx) is None
            and knob.missing(choice, ctx) is None)


def vendor_recipe(ctx: KnobContext, *, tuned_or_fixed: set[str]) -> dict[str, Any]:
    """The vendor settings on this host, by knob name: the runtime's thread settings (those
    this workload can apply), then the binding to socket 0. CPU binding is expressed
    through the knob the study uses (``physcpubind`` as socket 0's first cores, else
    ``cpunodebind``)."""
    topo = ctx.host.topology
    socket0 = topo.sockets[0]
    cores = topo.cores_of_socket(socket0)
    nodes = topo.nodes_of_socket(socket0)
    node_value: Any = nodes[0] if len(nodes) == 1 else format_cpu_list(nodes)
    knobs = catalogue()
    allocator = next((a for a in ALLOCATOR_PREFERENCE
                      if _preloadable(knobs["allocator"], a, ctx)), None)
    recipe = runtime_recipe(ctx.target.kind_of_runtime, cores=cores,
                            sockets=len(topo.sockets),
                            intel_openmp=_preloadable(knobs["omp_runtime"], "intel", ctx),
                            allocator=allocator)
    recipe = {name: value for name, value in recipe.items()
              if knobs[name].availability(ctx) is None}
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
