"""The knob catalogue (process level): thread pools, OpenMP/KMP variables, oneDNN, batch size,
precision, XLA, CPU/memory placement, and custom environment-variable and flag knobs."""

from tuner.knobs.base import (
    UNSET,
    ChoiceDomain,
    Domain,
    DomainError,
    IntDomain,
    Knob,
    KnobContext,
    Target,
)
from tuner.knobs.catalogue import (
    CONTROLLED_ENV,
    UnknownKnobError,
    catalogue,
    close_knob_names,
    knob_names,
    make_knob,
)

__all__ = [
    "CONTROLLED_ENV",
    "UNSET",
    "ChoiceDomain",
    "Domain",
    "DomainError",
    "IntDomain",
    "Knob",
    "KnobContext",
    "Target",
    "UnknownKnobError",
    "catalogue",
    "close_knob_names",
    "knob_names",
    "make_knob",
]
