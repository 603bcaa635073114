"""Thread-pool and runtime knobs: TensorFlow's inter-op/intra-op pools, PyTorch's intra-op
and inter-op pools, oneDNN on/off, batch size, precision and XLA (the OpenMP variables are in
``tuner.knobs.openmp``, the preloaded libraries in ``tuner.knobs.preload``).

Built-in workloads take their knobs as flags; other TensorFlow programs (``workload.runtime:
tensorflow``) take the thread pools through ``TF_NUM_INTEROP_THREADS``/
``TF_NUM_INTRAOP_THREADS``, which TensorFlow reads when its session options leave the pools
at 0; for any other runtime the pools do not exist and the two knobs are unavailable.
PyTorch's pools (``torch_threads``, ``torch_interop_threads``) are flags of the PyTorch
built-ins (``torch.set_num_threads``/``torch.set_num_interop_threads``); a PyTorch command
sizes its intra-op pool through ``OMP_NUM_THREADS``.
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
from tuner.knobs.openmp import INTEL_OPENMP_LIBS as INTEL_OPENMP_LIBS
from tuner.knobs.openmp import OPENMP_LIBS as OPENMP_LIBS
from tuner.knobs.openmp import OPENMP_NOTE as OPENMP_NOTE
from tuner.knobs.openmp import StringEnvKnob
from tuner.knobs.openmp import openmp_note as openmp_note


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


class TorchPool(IntKnob):
    """``torch_threads`` (``torch.set_num_threads``: the intra-op pool, OpenMP's team) or
    ``torch_interop_threads`` (``torch.set_num_interop_threads``): flags of the PyTorch
    built-ins, applied right after ``import torch``."""

    family = "threads"
    minimum = 1

    def __init__(self, *, name: str, summary: str, command_hint: str) -> None:
        self.name = name
        self.summary = summary
        self.command_hint = command_hint

    def availability(self, ctx: KnobContext) -> str | None:
        builtin = ctx.target.builtin
        if builtin is None:
            return (f"{self.name} is a flag of the PyTorch built-ins (torch_resnet, "
                    f"torch_transformer); {self.command_hint}")
        if self.name not in builtin.knob_flags:
            return (f"built-in workload {builtin.name} runs on {builtin.runtime}, not "
                    f"PyTorch (its thread pools are intra_op and inter_op)")
        return None

    def auto_domain(self, ctx: KnobContext) -> Domain:
        topo = ctx.host.topology
        upper = topo.logical_cpus if self.name == "torch_threads" else topo.physical_cores
        return IntDomain(1, max(upper, 1))

    def default_value(self, ctx: KnobContext) -> Any:
        # torch 2.x with OpenMP: the intra-op pool is omp_set_num_threads(mkl_get_max_threads
        # ()), the physical cores the process may run on (taskset -c 0: 1 thread); the
        # inter-op pool is TaskThreadPoolBase::defaultNumThreads(), cpuinfo's count of the
        # machine's physical cores, whatever the affinity.
        topo = ctx.host.topology
        return topo.physical_cores if self.name == "torch_threads" else len(topo.cores)

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value != UNSET and ctx.target.builtin is not None:
            builder.set_flag(ctx.target.builtin.knob_flags[self.name], str(value))


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


def thread_knobs() -> list[Knob]:
    """The thread pools (TensorFlow's, PyTorch's), in catalogue order."""
    return [
        TensorFlowPool(name="inter_op", env="TF_NUM_INTEROP_THREADS",
                       summary="TensorFlow inter-op pool: how many independent ops run at once "
                               "(--inter-op, or TF_NUM_INTEROP_THREADS for commands)"),
        TensorFlowPool(name="intra_op", env="TF_NUM_INTRAOP_THREADS",
                       summary="TensorFlow intra-op pool: threads one op (and oneDNN) splits "
                               "its work over (--intra-op, or TF_NUM_INTRAOP_THREADS)"),
        TorchPool(name="torch_threads",
                  summary="PyTorch intra-op pool: the OpenMP team one op splits its work "
                          "over (torch.set_num_threads; --threads of the PyTorch built-ins)",
                  command_hint="for a command, OMP_NUM_THREADS sizes torch's intra-op pool"),
        TorchPool(name="torch_interop_threads",
                  summary="PyTorch inter-op pool: ops run at once by torch.jit/fork "
                          "(torch.set_num_interop_threads; --interop-threads)",
                  command_hint="for a command, torch's inter-op pool has no environment "
                               "variable: give the program's own flag as a custom flag "
                               "knob"),
    ]


def runtime_knobs() -> list[Knob]:
    """oneDNN on/off, batch size, precision and XLA, in catalogue order."""
    return [
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
