"""The knob catalogue: every knob tuner knows by name, and the custom-knob factory."""

from __future__ import annotations

from difflib import get_close_matches

from tuner.knobs.base import Knob
from tuner.knobs.custom import EnvVarKnob, FlagKnob
from tuner.knobs.placement import placement_knobs
from tuner.knobs.threads import thread_knobs
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
                f"other setting write a custom knob: {{env: NAME, ...}} or {{flag: --name, ...}})")


def catalogue(spec_for: dict[str, KnobSpec] | None = None) -> dict[str, Knob]:
    """Fresh knob instances by name (placement knobs read per-study options from the spec)."""
    spec_for = spec_for or {}
    knobs: list[Knob] = [*thread_knobs(), *placement_knobs(spec_for.get("physcpubind"))]
    return {k.name: k for k in knobs}


def knob_names() -> list[str]:
    return list(catalogue())


#: Environment variables a catalogue knob may set. Every trial's environment starts without
#: them (``SearchSpace.controlled_env``, ``tuner.settings.child_base_environment``), so that
#: leaving a knob unset really means the runtime default.
CONTROLLED_ENV = frozenset({
    "OMP_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_HW_SUBSET",
    "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS",
})


def close_knob_names(name: str) -> list[str]:
    """Catalogue names close to ``name`` (for "did you mean ...?")."""
    names = knob_names()
    by_lower = {n.lower(): n for n in names}
    close = get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[c] for c in close]


def make_knob(name: str, spec: KnobSpec, known: dict[str, Knob] | None = None) -> Knob:
    """The knob a study file's entry ``name: spec`` stands for."""
    known = known if known is not None else catalogue({name: spec})
    if spec.env is not None:
        return EnvVarKnob(name=name, variable=spec.env)
    if spec.flag is not None:
        return FlagKnob(name=name, flag=spec.flag)
    if name in known:
        return known[name]
    raise UnknownKnobError(name, close_knob_names(name))
