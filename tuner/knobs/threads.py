"""Thread-pool and runtime knobs: TensorFlow's inter-op/intra-op pools, the OpenMP/KMP
variables, oneDNN on/off, batch size, precision and XLA.

Built-in workloads take their knobs as flags; other TensorFlow programs (``workload.runtime:
tensorflow``) take the thread pools through ``TF_NUM_INTEROP_THREADS``/
``TF_NUM_INTRAOP_THREADS``, which TensorFlow reads when its session options leave the pools
at 0; for any other runtime the pools do not exist and the two knobs are unavailable. The
OpenMP/KMP variables stay available on every runtime: they are plain variables, and a study
that lists them on a ``native`` program knows why (no vendor baseline sets them there).
"""

from __future__ import annotations

from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.knobs.base import (
    UNSET,
    ChoiceDomain,
    ChoiceKnob,
    Domain,
    DomainError,
    IntDomain,
    IntKnob,
    Knob,
    KnobContext,
)

OPENMP_NOTE = ("stock TensorFlow runs oneDNN on its own thread pool (runtime:threadpool), so "
               "this OpenMP setting is likely inert unless the build links an OpenMP runtime")


#: The OpenMP runtimes (``tuner.execution.libraries`` names) that read the OMP_* variables,
#: and those that read the KMP_* ones (Intel's, and LLVM's which shares its code).
OPENMP_LIBS = ("libgomp", "libiomp5", "libomp")
INTEL_OPENMP_LIBS = ("libiomp5", "libomp")


def openmp_note(ctx: KnobContext) -> str | None:
    """``OPENMP_NOTE`` where it holds: on a TensorFlow runtime (an OpenMP program reads the
    variable; a native one was given it on purpose)."""
    return OPENMP_NOTE if ctx.target.kind_of_runtime == "tensorflow" else None


class TensorFlowPool(IntKnob):
    """``inter_op`` or ``intra_op``: a flag for built-ins, an environment variable otherwise."""

    family = "threads"
    minimum = 1

    def __init__(self, *, name: str, env: str, summary: str) -> None:
        self.name = name
        self.env = env
        self.summary = summary

    def availability(self, ctx: KnobContext) -> str | None:
        builtin = ctx.target.builtin
        if builtin is not None:
            return None if self.name in builtin.knob_flags else (
                f"built-in workload {builtin.name} has no flag for {self.name}")
        runtime = ctx.target.kind_of_runtime
        if runtime != "tensorflow":
            return (f"the command is not a TensorFlow program (its runtime is {runtime}); "
                    "if it is one, set workload.runtime: tensorflow")
        return None

    def auto_domain(self, ctx: KnobContext) -> Domain:
        topo = ctx.host.topology
        upper = topo.logical_cpus if self.name == "intra_op" else topo.physical_cores
        return IntDomain(1, max(upper, 1))

    def default_value(self, ctx: KnobContext) -> Any:
        # TensorFlow sizes both pools to the CPUs the process may run on when left at 0.
        return ctx.host.topology.logical_cpus

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET:
            return
        builtin = ctx.target.builtin
        if builtin is not None:
            builder.set_flag(builtin.knob_flags[self.name], str(value))
        else:
            builder.set_env(self.env, str(value))


class SetsItsVariable(Knob):
    """A knob applied as the environment variable of its own name (``unset``: left out, so
    the runtime's default holds)."""

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value != UNSET:
            builder.set_env(self.name, str(value))


class IntEnvKnob(SetsItsVariable, IntKnob):
    """An integer environment variable of the OpenMP runtime."""

    family = "openmp"

    def __init__(self, *, name: str, summary: str, minimum: int, auto: Domain,
                 default: Any = UNSET, extra_words: tuple[str, ...] = (),
                 needs_library: tuple[str, ...] = OPENMP_LIBS) -> None:
        self.name = name
        self.needs_library = needs_library
        self.summary = summary
        self.minimum = minimum
        self._auto = auto
        self._default = default
        self.extra_words = extra_words

    def auto_domain(self, ctx: KnobContext) -> Domain:
        if self.name == "OMP_NUM_THREADS":
            return IntDomain(1, max(ctx.host.topology.logical_cpus, 1))
        return self._auto

    def default_value(self, ctx: KnobContext) -> Any:
        if self.name == "OMP_NUM_THREADS":
            return ctx.host.topology.logical_cpus
        return self._default

    def note(self, ctx: KnobContext) -> str | None:
        return openmp_note(ctx)


class StringEnvKnob(SetsItsVariable, ChoiceKnob):
    """A string environment variable (KMP_AFFINITY, KMP_HW_SUBSET, TF_ENABLE_ONEDNN_OPTS)."""

    def __init__(self, *, name: str, family: str, summary: str,
                 auto: tuple[str, ...], allowed: tuple[str, ...] | None = None,
                 bool_words: tuple[str, str] | None = None,
                 needs_library: tuple[str, ...] = ()) -> None:
        self.needs_library = needs_library
        self.bool_words = bool_words
        self.name = name
        self.family = family
        self.summary = summary
        self._auto = auto
        self.allowed = allowed

    def auto_domain(self, ctx: KnobContext) -> Domain:
        if self.name == "KMP_HW_SUBSET" and ctx.host.topology.threads_per_core > 1:
            return ChoiceDomain((UNSET, "1T"))
        return ChoiceDomain(self._auto)

    def note(self, ctx: KnobContext) -> str | None:
        return openmp_note(ctx) if self.needs_library else None


class BuiltinFlagKnob(ChoiceKnob):
    """A choice the built-in workloads take as a flag (precision, xla)."""

    family = "runtime"

    def __init__(self, *, name: str, summary: str, allowed: tuple[str, ...],
                 default: str, bool_words: tuple[str, str] | None = None) -> None:
        self.name = name
        self.summary = summary
        self.allowed = allowed + (UNSET,)
        self._default = default
        self.bool_words = bool_words

    def availability(self, ctx: KnobContext) -> str | None:
        builtin = ctx.target.builtin
        if builtin is None:
            return (f"{self.name} is a flag of the built-in workloads; for a command, use a "
                    f"custom flag knob ({{flag: --your-flag, choices: [...]}})")
        if self.name not in builtin.knob_flags:
            return f"built-in workload {builtin.name} has no {self.name} flag"
        return None

    def auto_domain(self, ctx: KnobContext) -> Domain:
        if self.name == "precision":
            flags = ctx.host.topology.flags
            native = {"avx512_bf16", "amx_bf16"} & flags
            return ChoiceDomain(("fp32", "bf16") if native else ("fp32",))
        return ChoiceDomain(tuple(a for a in self.allowed or () if a != UNSET))

    def default_value(self, ctx: KnobContext) -> Any:
        return self._default

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value != UNSET and ctx.target.builtin is not None:
            builder.set_flag(ctx.target.builtin.knob_flags[self.name], str(value))


class BatchSize(IntKnob):
    name = "batch_size"
    family = "runtime"
    summary = ("items per step of a built-in workload (--batch-size); throughput is per item, "
               "so larger batches trade latency for throughput")
    minimum = 1

    def availability(self, ctx: KnobContext) -> str | None:
        builtin = ctx.target.builtin
        if builtin is None:
            return ("a command takes its batch size through a custom flag knob, e.g. "
                    "batch: {flag: --batch-size, choices: [16, 32, 64]}")
        if "batch_size" not in builtin.knob_flags:
            return f"built-in workload {builtin.name} has no batch size"
        return None

    def auto_domain(self, ctx: KnobContext) -> Domain:
        raise DomainError("batch_size has no host-derived domain; give {low, high, step} or "
                          "choices")

    def default_value(self, ctx: KnobContext) -> Any:
        builtin = ctx.target.builtin
        if builtin is not None and builtin.default_batch:
            return builtin.default_batch.get(ctx.target.preset, UNSET)
        return UNSET

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value != UNSET and ctx.target.builtin is not None:
            builder.set_flag(ctx.target.builtin.knob_flags["batch_size"], str(value))


def thread_knobs() -> list[Any]:
    """Fresh instances of this family, in catalogue order."""
    return [
        TensorFlowPool(name="inter_op", env="TF_NUM_INTEROP_THREADS",
                       summary="TensorFlow inter-op pool: how many independent ops run at once "
                               "(--inter-op, or TF_NUM_INTEROP_THREADS for commands)"),
        TensorFlowPool(name="intra_op", env="TF_NUM_INTRAOP_THREADS",
                       summary="TensorFlow intra-op pool: threads one op (and oneDNN) splits "
                               "its work over (--intra-op, or TF_NUM_INTRAOP_THREADS)"),
        IntEnvKnob(name="OMP_NUM_THREADS", minimum=1, auto=IntDomain(1, 1),
                   summary="OpenMP team size, for OpenMP builds of TensorFlow/oneDNN"),
        StringEnvKnob(name="KMP_AFFINITY", family="openmp",
                      needs_library=INTEL_OPENMP_LIBS,
                      auto=(UNSET, "granularity=fine,compact,1,0", "granularity=fine,scatter",
                            "none"),
                      summary="Intel OpenMP thread placement, e.g. granularity=fine,compact,1,0"),
        IntEnvKnob(name="KMP_BLOCKTIME", minimum=0, auto=ChoiceDomain((UNSET, 0, 1, 10, 200)),
                   default=200, extra_words=("infinite",), needs_library=INTEL_OPENMP_LIBS,
                   summary="ms an Intel OpenMP thread spins after a parallel region "
                           "before sleeping (default 200)"),
        StringEnvKnob(name="KMP_HW_SUBSET", family="openmp", auto=(UNSET,),
                      needs_library=INTEL_OPENMP_LIBS,
                      summary="Intel OpenMP hardware subset, e.g. 1T (one thread per core)"),
        StringEnvKnob(name="TF_ENABLE_ONEDNN_OPTS", family="runtime", auto=("1", "0"),
                      allowed=("0", "1", UNSET), bool_words=("0", "1"),
                      summary="oneDNN graph rewrites and kernels in TensorFlow (1 on, 0 off)"),
        BatchSize(),
        BuiltinFlagKnob(name="precision", allowed=("fp32", "bf16"), default="fp32",
                        summary="compute precision of a built-in workload (bf16 uses "
                                "AVX512-BF16/AMX where present)"),
        BuiltinFlagKnob(name="xla", allowed=("off", "on"), default="off", bool_words=("off", "on"),
                        summary="compile the measured step with XLA (jit_compile)"),
    ]
