"""The knob catalogue: every knob tuner knows by name, and the custom-knob factory."""

from __future__ import annotations

from collections.abc import Collection
from difflib import get_close_matches

from tuner.knobs.base import Knob
from tuner.knobs.custom import EnvVarKnob, FlagKnob, TemplateKnob
from tuner.knobs.openmp import openmp_knobs
from tuner.knobs.placement import placement_knobs
from tuner.knobs.preload import preload_knobs
from tuner.knobs.system import SystemKnob, memory_knobs, scheduler_knobs
from tuner.knobs.system_hardware import hardware_knobs
from tuner.knobs.threads import runtime_knobs, thread_knobs
from tuner.spec.models import KnobSpec


class UnknownKnobError(KeyError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.suggestions = suggestions

    def __str__(self) -> str:
        hint = (f"; did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
                if self.suggestions else "")
        return (f"unknown knob {self.name!r}{hint} (known: see `tuner doctor`; for any "
                f"other setting write a custom knob: {{env: NAME, ...}} or {{flag: --name, ...}}, "
                f"or name it in a placeholder of the command's arguments, e.g. "
                f"\"--{self.name}={{{self.name}}}\", to pass it in place)")


def catalogue(spec_for: dict[str, KnobSpec] | None = None) -> dict[str, Knob]:
    """Fresh knob instances by name (placement knobs read per-study options from the spec)."""
    spec_for = spec_for or {}
    knobs: list[Knob] = [*thread_knobs(), *openmp_knobs(), *preload_knobs(), *runtime_knobs(),
                         *placement_knobs(spec_for.get("physcpubind")), *system_knobs()]
    return {k.name: k for k in knobs}


def system_knobs() -> list[SystemKnob]:
    """The knobs that change the whole machine (memory, scheduler, hardware)."""
    return [*memory_knobs(), *scheduler_knobs(), *hardware_knobs()]


def knob_names() -> list[str]:
    return list(catalogue())


#: Environment variables a catalogue knob may set. Every trial's environment starts without
#: them (``SearchSpace.controlled_env``, ``tuner.settings.child_base_environment``), so that
#: leaving a knob unset really means the runtime default.
#:
#: ``LD_PRELOAD`` is among them: which OpenMP runtime and allocator a process loads is part
#: of "the runtime's default", and ``omp_runtime``/``allocator`` set it. A preload inherited
#: from tuner's own environment (a shell that runs tuner under jemalloc, a CI harness)
#: would otherwise reach every baseline and trial unseen: the defaults baseline would not be
#: the defaults, ``omp_runtime: gnu`` would not be GNU's, and the libraries a trial loads
#: would not be the ones its knobs chose. The price: a user who runs tuner under a preload
#: on purpose loses it in the trials; a command that needs one says so in its own
#: ``workload.env`` (kept, after the knobs' libraries).
CONTROLLED_ENV = frozenset({
    "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "OMP_SCHEDULE", "GOMP_CPU_AFFINITY",
    "KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_HW_SUBSET", "LD_PRELOAD",
    "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS",
})


def close_knob_names(name: str) -> list[str]:
    """Catalogue names close to ``name`` (for "did you mean ...?")."""
    names = knob_names()
    by_lower = {n.lower(): n for n in names}
    close = get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[c] for c in close]


def make_knob(name: str, spec: KnobSpec, known: dict[str, Knob] | None = None, *,
              placeholders: Collection[str] = ()) -> Knob:
    """The knob a study file's entry ``name: spec`` stands for. ``placeholders``: the knob
    names the command's ``{name}`` placeholders refer to; such a knob is a template knob
    unless it sets a variable or is in the catalogue (those fill the placeholder too), and a
    ``flag:`` knob there is written in place, not appended."""
    known = known if known is not None else catalogue({name: spec})
    if spec.env is not None:
        return EnvVarKnob(name=name, variable=spec.env, default=spec.default)
    if spec.flag is not None and name not in placeholders:
        return FlagKnob(name=name, flag=spec.flag, default=spec.default)
    if name in known and spec.flag is None:
        return known[name]
    if name in placeholders:
        return TemplateKnob(name=name, default=spec.default)
    raise UnknownKnobError(name, close_knob_names(name))
