"""The knob catalogue (process level): thread pools (TensorFlow's, PyTorch's), OpenMP/KMP
variables, the OpenMP runtime and the allocator (preloaded), oneDNN, batch size, precision,
XLA, CPU/memory placement, custom environment-variable and flag knobs, and system knobs
(memory, scheduler, prefetchers, frequency, idle states, SMT: ``system``,
``prefetch``, ``system_hardware``), which change the machine for a trial through the
journal. Each
knob says whether this host and workload can apply it (``availability``), resolves a study
file's entry to a ``Domain`` on the host, and writes a value into a ``LaunchBuilder``
(``apply``); ``catalogue()`` and ``make_knob`` give the knob a study names.

May import: the top-level modules, ``spec`` (the knob entry, the built-in workloads) and
``execution`` (the launch a knob writes into)."""

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
    system_knobs,
)
from tuner.knobs.system import SYSTEM_FAMILY, SystemKnob

__all__ = [
    "CONTROLLED_ENV",
    "SYSTEM_FAMILY",
    "UNSET",
    "ChoiceDomain",
    "Domain",
    "DomainError",
    "IntDomain",
    "Knob",
    "SystemKnob",
    "KnobContext",
    "Target",
    "UnknownKnobError",
    "catalogue",
    "close_knob_names",
    "knob_names",
    "make_knob",
    "system_knobs",
]
