"""Custom knobs, so any program can be tuned: an environment variable (``env: NAME``), a
command-line flag appended to the command (``flag: --name``), or a placeholder written in
place in the command's arguments (``command: [prog, "--name={name}"]`` with ``name: {low,
high}``: a template knob), over a range or choices given in the study file. A custom knob's
``default`` is the value the program runs with today: what the defaults baseline runs.

Any knob named in a placeholder (a catalogue knob too) fills it, in ``placeholder_text``:
the value as text; ``unset`` and ``false`` leave out the argument that holds it, and
``true`` writes nothing in its place (``"--fast{fast}"`` passes ``--fast``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.knobs.base import UNSET, ChoiceDomain, Domain, DomainError, IntDomain, Knob, KnobContext
from tuner.spec.models import KnobSpec

#: Variables a custom ``{env: NAME}`` knob may set with the ordinary (api) token: runtime
#: thread counts, placement and numeric tuning of OpenMP (GNU, Intel/LLVM), MKL, OpenBLAS,
#: oneDNN, TensorFlow and glibc malloc. Each takes a number or a keyword, none a file path,
#: a library, a program or flags for another program. Left out on purpose (admin token only):
#: anything naming a file or library (``OMP_TOOL_LIBRARIES``, ``KMP_CPUINFO_FILE``,
#: ``LD_*``, ``*PATH*``), flag strings (``*_FLAGS``, ``TF_XLA_FLAGS``, ``MALLOC_CONF``,
#: ``GLIBC_TUNABLES``), interpreters' start-up hooks (``PYTHON*``, ``BASH_ENV``, ``ENV``,
#: ``BROWSER``, ``PERL5OPT``, ...) and dump/profile switches that write files.
SAFE_ENV = frozenset({
    # OpenMP (any runtime)
    "OMP_NUM_THREADS", "OMP_DYNAMIC", "OMP_PROC_BIND", "OMP_PLACES", "OMP_SCHEDULE",
    "OMP_STACKSIZE", "OMP_WAIT_POLICY", "OMP_MAX_ACTIVE_LEVELS", "OMP_NESTED",
    "OMP_THREAD_LIMIT", "OMP_DISPLAY_ENV", "OMP_DISPLAY_AFFINITY", "OMP_NUM_TEAMS",
    "OMP_TEAMS_THREAD_LIMIT",
    # GNU OpenMP
    "GOMP_SPINCOUNT", "GOMP_CPU_AFFINITY", "GOMP_STACKSIZE",
    # Intel / LLVM OpenMP
    "KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_HW_SUBSET", "KMP_SETTINGS", "KMP_LIBRARY",
    "KMP_DYNAMIC_MODE", "KMP_STACKSIZE", "KMP_TOPOLOGY_METHOD", "KMP_FORKJOIN_BARRIER",
    "KMP_FORKJOIN_BARRIER_PATTERN", "KMP_PLAIN_BARRIER", "KMP_PLAIN_BARRIER_PATTERN",
    "KMP_REDUCTION_BARRIER", "KMP_REDUCTION_BARRIER_PATTERN", "KMP_TPAUSE", "KMP_USE_YIELD",
    "KMP_ALIGN_ALLOC", "KMP_ENABLE_TASK_THROTTLING", "KMP_TEAMS_THREAD_LIMIT",
    "KMP_DEVICE_THREAD_LIMIT", "KMP_ALL_THREADS", "KMP_DETERMINISTIC_REDUCTION",
    "KMP_LOCK_KIND", "KMP_HOT_TEAMS_MODE", "KMP_HOT_TEAMS_MAX_LEVEL", "KMP_WARNINGS",
    # MKL, OpenBLAS and other BLAS thread counts
    "MKL_NUM_THREADS", "MKL_DYNAMIC", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
    "MKL_DOMAIN_NUM_THREADS", "MKL_THREADING_LAYER", "MKL_DISABLE_FAST_MM",
    "MKL_FAST_MEMORY_LIMIT", "MKL_VERBOSE", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
    "GOTO_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    # oneDNN
    "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_CPU_ISA_HINTS", "DNNL_CPU_ISA_HINTS",
    "ONEDNN_DEFAULT_FPMATH_MODE", "DNNL_DEFAULT_FPMATH_MODE",
    "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY",
    "ONEDNN_VERBOSE", "DNNL_VERBOSE",
    # TensorFlow
    "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_ENABLE_ONEDNN_OPTS",
    "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS", "TF_ONEDNN_USE_SYSTEM_ALLOCATOR",
    "TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD", "TF_CPP_MIN_LOG_LEVEL",
    # glibc malloc (numbers)
    "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
})
#: The values an allow-listed variable may take with the ordinary token: numbers, keywords
#: and OpenMP place lists (``{0:4}:2:4``, ``granularity=fine,compact,1,0``); no slash (no
#: path), no quote, ``$``, ``;`` or space.
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.,:=+{}-]{0,64}")


def env_needs_admin(variable: str, values: Iterable[Any]) -> str | None:
    """Why a custom knob setting ``variable`` to ``values`` needs the admin token (None:
    the ordinary token may submit it)."""
    if variable not in SAFE_ENV:
        return (f"{variable} is not on the allow-list of variables that cannot run code "
                "(see the README's security section)")
    for value in values:
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        if not SAFE_VALUE.fullmatch(text):
            return (f"the value {text!r} of {variable} is not a plain number, keyword or "
                    "place list (expected letters, digits and _.,:=+{}-, at most 64)")
    return None


def placeholder_text(value: Any) -> str | None:
    """What a knob's value writes in place of its ``{name}`` placeholder; None leaves out
    the argument (``unset``, ``false``); ``true`` writes nothing (the argument is a switch)."""
    if value is False or value == UNSET:
        return None
    return "" if value is True else str(value)


class CustomKnob(Knob):
    """A knob the study file defines; ``default`` (the spec's) is the value the program
    runs with when tuner leaves it alone, ``None`` when the study does not say."""

    family = "custom"
    default: Any = None

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        if spec.kind == "auto":
            raise DomainError("a custom knob has no host-derived domain; give {low, high, step}"
                              " or choices")
        domain: Domain
        if spec.kind == "range":
            assert spec.low is not None and spec.high is not None
            domain = IntDomain(spec.low, spec.high, spec.step or 1)
        else:
            domain = ChoiceDomain(tuple(spec.listed()))
        if spec.default is not None and not domain.contains(spec.default):
            raise DomainError(f"the default {spec.default!r} is not a value of the knob's "
                              f"domain {domain.describe()}", field="default")
        return domain

    def default_value(self, ctx: KnobContext) -> Any:
        return UNSET if self.default is None else self.default


class EnvVarKnob(CustomKnob):
    def __init__(self, *, name: str, variable: str, default: Any = None) -> None:
        self.name = name
        self.variable = variable
        self.default = default
        self.summary = f"sets the environment variable {variable}"

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET:
            return
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        builder.set_env(self.variable, text)


class FlagKnob(CustomKnob):
    """``--flag value``; a boolean ``true`` passes the bare flag and ``false`` omits it."""

    def __init__(self, *, name: str, flag: str, default: Any = None) -> None:
        self.name = name
        self.flag = flag
        self.default = default
        self.summary = f"passes the command-line flag {flag}"

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET or value is False:
            return
        builder.set_flag(self.flag, None if value is True else str(value))


class TemplateKnob(CustomKnob):
    """A knob written in place by the command's ``{name}`` placeholders (the launch fills
    them, with ``placeholder_text``, for every knob a placeholder names): nothing else."""

    def __init__(self, *, name: str, default: Any = None) -> None:
        self.name = name
        self.default = default
        self.summary = f"fills the placeholder {{{name}}} in the command's arguments"

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        return None
