"""OpenMP knobs: the variables every OpenMP runtime reads (``OMP_NUM_THREADS``,
``OMP_PROC_BIND``, ``OMP_PLACES``, ``OMP_SCHEDULE``), GNU's ``GOMP_CPU_AFFINITY`` (which
Intel's and LLVM's runtimes honour too) and Intel's ``KMP_*`` ones, each applied as the
environment variable of its own name (``unset``: left out, so the runtime's default holds).

The anchor is PyTorch's launcher for Xeon, ``torch/backends/xeon/run_cpu.py``:
``_Launcher.set_multi_thread_and_allocator`` sets ``OMP_NUM_THREADS`` to the cores per
instance and, when it preloads Intel's runtime, ``KMP_AFFINITY=granularity=fine,compact,1,0``
and ``KMP_BLOCKTIME=1``. Intel Extension for PyTorch's launcher, which run_cpu was taken from
(``intel_extension_for_pytorch/cpu/launch/launcher_base.py``, ``set_omp_runtime``), sets
``OMP_SCHEDULE=STATIC`` and ``OMP_PROC_BIND=CLOSE`` instead when the GNU runtime stays;
run_cpu itself sets neither. Rather than apply those rules, a study measures them.

Each knob says which runtime reads it (``needs_library``): the ``OMP_*`` variables and
``GOMP_CPU_AFFINITY`` any of them (``OMP_NUM_THREADS`` OpenBLAS too; LLVM's
``kmp_settings.cpp`` parses GOMP_CPU_AFFINITY under ``KMP_GOMP_COMPAT``, as a rival of
KMP_AFFINITY, which wins when both are set), the ``KMP_*`` ones Intel's and LLVM's only.
All stay available on every runtime: they are plain variables, and a study that lists them
on a ``native`` program knows why (no vendor baseline sets them there). On TensorFlow they
carry ``OPENMP_NOTE``.
"""

from __future__ import annotations

import re
from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.host import format_cpu_list
from tuner.knobs.base import (
    UNSET,
    ChoiceDomain,
    ChoiceKnob,
    Domain,
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
    """``OPENMP_NOTE`` where it holds: on a TensorFlow runtime (an OpenMP program, PyTorch
    included, reads the variable; a native one was given it on purpose)."""
    return OPENMP_NOTE if ctx.target.kind_of_runtime == "tensorflow" else None


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


class OmpVariable(StringEnvKnob):
    """An ``OMP_*``/``GOMP_*`` variable with a grammar (``grammar`` checks one value) that any
    OpenMP runtime reads."""

    auto_values: tuple[str, ...] = (UNSET,)

    def __init__(self, *, summary: str) -> None:
        super().__init__(name=self.name, family="openmp", summary=summary,
                         auto=self.auto_values, needs_library=OPENMP_LIBS,
                         bool_words=self.bool_words)

    def grammar(self, value: str, ctx: KnobContext) -> str | None:
        """Why ``value`` is not a value of this variable on this host (None: it is)."""
        return None

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        return None if value == UNSET else self.grammar(value, ctx)


PROC_BIND_WORDS = ("false", "true", "close", "spread", "primary", "master")


class OmpProcBind(OmpVariable):
    """``OMP_PROC_BIND``: whether and how threads are bound to places (``false``, ``true``,
    ``close``, ``spread``, ``primary``, or a list per nesting level such as
    ``spread,close``); any case, as OpenMP reads it."""

    name = "OMP_PROC_BIND"
    auto_values = (UNSET, "close", "spread")
    bool_words = ("false", "true")

    def grammar(self, value: str, ctx: KnobContext) -> str | None:
        words = value.lower().split(",")
        if len(words) == 1 and words[0] in PROC_BIND_WORDS:
            return None
        if len(words) > 1 and all(w.strip() in PROC_BIND_WORDS[2:] for w in words):
            return None
        return (f"expected one of {list(PROC_BIND_WORDS)} or a list per nesting level such "
                f"as 'spread,close', got {value!r}")


PLACE_NAMES = ("threads", "cores", "sockets", "ll_caches", "numa_domains")
_ABSTRACT = re.compile(r"(?P<name>[a-z_]+)(?:\((?P<count>\d+)\))?")
_PLACE_LIST = re.compile(r"\{[^{}]*\}(?:,\{[^{}]*\})*")
_PLACE_ITEM = re.compile(r"(\d+)(?::(\d+)(?::(\d+))?)?")


def place_list_cpus(text: str) -> list[int] | None:
    """The CPU ids an explicit ``OMP_PLACES`` list names (``{0,1},{2,3}``, ``{0:4},{4:4}``,
    ``{0:4:2}``: lower bound, length, stride), or None when ``text`` is not such a list
    (place intervals such as ``{0:4}:2:4`` and exclusions ``!`` are not accepted: write
    the places out)."""
    compact = re.sub(r"\s+", "", text)
    if not _PLACE_LIST.fullmatch(compact):
        return None
    cpus: list[int] = []
    for place in re.findall(r"\{([^{}]*)\}", compact):
        items = place.split(",")
        for item in items:
            match = _PLACE_ITEM.fullmatch(item)
            if match is None:
                return None
            low, length, stride = (int(g) if g else None for g in match.groups())
            assert low is not None
            count, step = (length or 1), (stride or 1)
            if count < 1 or step < 1:
                return None
            cpus.extend(low + i * step for i in range(count))
    return cpus


class OmpPlaces(OmpVariable):
    """``OMP_PLACES``: the places threads are bound to, an abstract name (``threads``,
    ``cores``, ``sockets``, ``ll_caches``, ``numa_domains``, optionally with a count:
    ``cores(4)``) or an explicit list of places whose CPUs must exist here."""

    name = "OMP_PLACES"

    def auto_domain(self, ctx: KnobContext) -> Domain:
        smt = ctx.host.topology.threads_per_core > 1
        return ChoiceDomain((UNSET, "cores", "threads") if smt else (UNSET, "cores"))

    def grammar(self, value: str, ctx: KnobContext) -> str | None:
        abstract = _ABSTRACT.fullmatch(value.strip().lower())
        if abstract is not None and abstract["name"] in PLACE_NAMES:
            if abstract["count"] is not None and int(abstract["count"]) < 1:
                return f"{value!r}: the count of places must be at least 1"
            return None
        cpus = place_list_cpus(value)
        if cpus is None:
            return (f"expected one of {list(PLACE_NAMES)} (optionally with a count, "
                    f"'cores(4)') or a list of places such as '{{0,1}},{{2,3}}' or "
                    f"'{{0:4}},{{4:4}}', got {value!r}")
        allowed = ctx.host.topology.allowed
        bad = sorted(set(cpus) - allowed)
        if not cpus or bad:
            return (f"CPU {format_cpu_list(bad) or value} in {value!r} is not online or not "
                    f"allowed here (usable: {format_cpu_list(allowed)})")
        return None


_AFFINITY_ITEM = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")


def gomp_affinity_cpus(text: str) -> list[int] | None:
    """The CPU ids of a ``GOMP_CPU_AFFINITY`` list (``0 3 1-2 4-15:2``, blank- or
    comma-separated), or None when ``text`` is not one."""
    cpus: list[int] = []
    for item in re.split(r"[\s,]+", text.strip()):
        match = _AFFINITY_ITEM.fullmatch(item)
        if match is None:
            return None
        low, high, stride = (int(g) if g else None for g in match.groups())
        assert low is not None
        top = low if high is None else high
        if top < low or stride == 0:
            return None
        cpus.extend(range(low, top + 1, stride or 1))
    return cpus


class GompCpuAffinity(OmpVariable):
    """``GOMP_CPU_AFFINITY``: thread i runs on the i-th CPU of the list (wrapping around).
    GNU's variable; Intel's and LLVM's runtimes honour it too unless KMP_AFFINITY is set.
    ``auto``: unset, the first hardware thread of every usable core (one thread per core),
    and every usable CPU when the cores have siblings."""

    name = "GOMP_CPU_AFFINITY"

    def auto_domain(self, ctx: KnobContext) -> Domain:
        topo = ctx.host.topology
        firsts = format_cpu_list(core[0].id for core in topo.usable_cores)
        every = format_cpu_list(topo.allowed)
        return ChoiceDomain(tuple(dict.fromkeys((UNSET, firsts, every))))

    def grammar(self, value: str, ctx: KnobContext) -> str | None:
        cpus = gomp_affinity_cpus(value)
        if cpus is None:
            return (f"expected a CPU list such as '0-27', '0 2 4' or '0-54:2', "
                    f"got {value!r}")
        allowed = ctx.host.topology.allowed
        bad = sorted(set(cpus) - allowed)
        if not cpus or bad:
            return (f"CPU {format_cpu_list(bad) or value} is not online or not allowed here "
                    f"(usable: {format_cpu_list(allowed)})")
        return None


_SCHEDULE = re.compile(r"(?:(?:non)?monotonic:)?(?P<kind>static|dynamic|guided|auto)"
                       r"(?:,(?P<chunk>\d+))?")


class OmpSchedule(OmpVariable):
    """``OMP_SCHEDULE``: how loops with ``schedule(runtime)`` split their iterations
    (``static``, ``dynamic``, ``guided``, ``auto``; a chunk size ``dynamic,4``; a
    ``monotonic:``/``nonmonotonic:`` modifier). Only such loops read it: PyTorch's
    ``at::parallel_for`` splits its work itself, so on PyTorch it is likely inert (a study
    measures that; Intel Extension for PyTorch's launcher sets STATIC with GNU OpenMP)."""

    name = "OMP_SCHEDULE"
    auto_values = (UNSET, "static", "dynamic")

    def grammar(self, value: str, ctx: KnobContext) -> str | None:
        match = _SCHEDULE.fullmatch(re.sub(r"\s+", "", value.lower()))
        if match is None:
            return (f"expected static, dynamic, guided or auto, optionally with a chunk size "
                    f"('dynamic,4') and a monotonic:/nonmonotonic: modifier, got {value!r}")
        if match["chunk"] is not None and (int(match["chunk"]) < 1
                                           or match["kind"] == "auto"):
            return f"{value!r}: the chunk size must be at least 1, and auto takes none"
        return None


def openmp_knobs() -> list[Knob]:
    """Fresh instances of this family, in catalogue order."""
    return [
        # OpenBLAS (NumPy's, loaded by every TensorFlow process) sizes its pool from
        # OMP_NUM_THREADS when OPENBLAS_NUM_THREADS is unset, OpenMP build or not
        IntEnvKnob(name="OMP_NUM_THREADS", minimum=1, auto=IntDomain(1, 1),
                   needs_library=OPENMP_LIBS + ("openblas",),
                   summary="OpenMP team size (PyTorch's intra-op pool for commands; for "
                           "OpenMP builds of TensorFlow/oneDNN)"),
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
        OmpProcBind(summary="whether and how OpenMP threads are bound to places: false, "
                            "true, close, spread, primary (or per level: spread,close)"),
        OmpPlaces(summary="the places OpenMP binds threads to: threads, cores, sockets, "
                          "ll_caches, numa_domains, or a list such as {0,1},{2,3}"),
        GompCpuAffinity(summary="the CPU each OpenMP thread runs on, in order ('0-27'); "
                                "GNU's variable, honoured by Intel's and LLVM's runtimes too"),
        OmpSchedule(summary="the schedule of loops with schedule(runtime): static, dynamic, "
                            "guided, auto (with a chunk: dynamic,4)"),
    ]
