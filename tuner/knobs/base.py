"""The knob plug-in point.

A knob turns one value into changes of a launch (an environment variable, a flag, a binding).
Call order, for each study: ``availability(ctx)`` (None when this host and workload can apply
the knob, else the reason); ``domain(spec, ctx)`` resolves the study file's domain against
the host, raising ``DomainError`` for values that cannot run here; then, for each trial,
``apply(value, builder, ctx)``. ``UNSET`` as a value means "leave the runtime's default".
"""

from __future__ import annotations

import math
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from tuner.execution.launch import LaunchBuilder
from tuner.host import Host
from tuner.spec.builtin_workloads import Builtin
from tuner.spec.models import KnobSpec

#: A choice that means "do not set this knob".
UNSET = "unset"

#: What a workload runs on (``workload.runtime``): it decides which knobs apply and what the
#: vendor baseline sets.
Runtime = Literal["tensorflow", "torch", "openmp", "native"]


@dataclass(frozen=True, kw_only=True)
class Target:
    """What the knobs are applied to: a built-in workload (knobs become its flags) or a
    command (on a ``tensorflow`` runtime, thread knobs become TF_NUM_*_THREADS variables),
    and the runtime it runs on (``kind_of_runtime``)."""

    builtin: Builtin | None
    #: ``tensorflow``, ``torch``, ``openmp`` or ``native``; None: from ``tensorflow`` (the
    #: older spelling: true is tensorflow, false native), else the built-in's own runtime,
    #: else tensorflow.
    runtime: Runtime | None = None
    tensorflow: bool | None = None
    preset: str = "small"
    #: The interpreter a built-in runs in (``workload.python`` resolved) and its
    #: ``sys.prefix``, where a runtime's own libraries (e.g. intel-openmp's libiomp5) lie.
    python: str = sys.executable
    python_prefix: str = sys.prefix

    @property
    def kind_of_runtime(self) -> Runtime:
        """``runtime``, with its default filled in (see the field)."""
        if self.runtime is not None:
            return self.runtime
        if self.tensorflow is not None:
            return "tensorflow" if self.tensorflow else "native"
        if self.builtin is not None:
            return self.builtin.runtime
        return "tensorflow"


@dataclass(frozen=True, kw_only=True)
class KnobContext:
    host: Host
    target: Target


class DomainError(ValueError):
    """A domain that cannot be sampled here; ``field`` is the part of the knob entry at fault
    (``high``, ``choices``, ...) or empty for the whole entry."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IntDomain:
    low: int
    high: int
    step: int = 1

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def contains(self, value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.low <= value <= self.high and (value - self.low) % self.step == 0)

    def nearest(self, value: int) -> int:
        clipped = min(max(value, self.low), self.high)
        return self.low + round((clipped - self.low) / self.step) * self.step

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"{self.low}..{self.high}{step}"


@dataclass(frozen=True)
class ChoiceDomain:
    choices: tuple[Any, ...]

    @property
    def size(self) -> int:
        return len(self.choices)

    def values(self) -> list[Any]:
        return list(self.choices)

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)

    def describe(self) -> str:
        return "{" + ", ".join(map(str, self.choices)) + "}"


Domain = IntDomain | ChoiceDomain


class Knob(ABC):
    """One tunable setting. Subclasses set ``name``, ``family`` and ``summary``."""

    name: str
    family: str
    summary: str
    #: The runtime libraries that read this knob (``tuner.execution.libraries`` names:
    #: libgomp, libiomp5, libomp, ...): when none of them is mapped in the workload's
    #: process, the knob is inert by construction. Empty: it acts whatever is loaded.
    needs_library: tuple[str, ...] = ()
    #: True for a knob that changes which runtime libraries the process loads (the OpenMP
    #: runtime, the allocator): with one in the space, what the baselines loaded does not
    #: bound what a trial loads, so no knob is judged inert from the baselines' libraries.
    changes_libraries: bool = False

    @abstractmethod
    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        """The values this knob may take here, from the study file's entry (resolving
        ``auto``); raise ``DomainError`` for anything this host cannot run."""

    @abstractmethod
    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        """Write ``value`` into the launch; ``UNSET`` leaves the runtime's default."""

    def availability(self, ctx: KnobContext) -> str | None:
        """None when this host and workload can apply the knob, else why not."""
        return None

    def default_value(self, ctx: KnobContext) -> Any:
        """The value equivalent to leaving the knob alone (what the defaults baseline runs)."""
        return UNSET

    def note(self, ctx: KnobContext) -> str | None:
        """Something a user should know (a fallback in use, a knob likely inert here)."""
        return None


class IntKnob(Knob):
    """A knob over integers (plus ``unset`` where ``allow_unset``), bounded below by
    ``minimum`` and above by ``maximum(ctx)`` when that is a hard limit of the host."""

    minimum: int = 1
    allow_unset: bool = True
    extra_words: tuple[str, ...] = ()

    def maximum(self, ctx: KnobContext) -> int | None:
        return None

    @abstractmethod
    def auto_domain(self, ctx: KnobContext) -> Domain:
        """The domain ``auto`` stands for on this host."""

    def _check_value(self, value: Any, ctx: KnobContext, field: str) -> None:
        if isinstance(value, str) and (value == UNSET and self.allow_unset
                                       or value in self.extra_words):
            return
        if not isinstance(value, int) or isinstance(value, bool):
            words = ([UNSET] if self.allow_unset else []) + list(self.extra_words)
            also = f" or one of {words}" if words else ""
            raise DomainError(f"expected an integer{also}, got {value!r}", field=field)
        if value < self.minimum:
            raise DomainError(f"expected a value >= {self.minimum}, got {value}", field=field)
        limit = self.maximum(ctx)
        if limit is not None and value > limit:
            raise DomainError(f"{value} is beyond this host: {self.limit_reason(ctx, limit)}",
                              field=field)

    def limit_reason(self, ctx: KnobContext, limit: int) -> str:
        return f"at most {limit}"

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        kind = spec.kind
        if kind == "auto":
            return self.auto_domain(ctx)
        if kind == "range":
            assert spec.low is not None and spec.high is not None
            self._check_value(spec.low, ctx, "low")
            self._check_value(spec.high, ctx, "high")
            return IntDomain(spec.low, spec.high, spec.step or 1)
        values = spec.listed()
        for value in values:
            self._check_value(value, ctx, kind)
        return ChoiceDomain(tuple(values))


class ChoiceKnob(Knob):
    """A knob over a fixed vocabulary of strings (``allowed``; None means any string)."""

    allowed: tuple[str, ...] | None = None
    #: Words for false and true: YAML 1.1 reads ``off``/``on`` as booleans, so a knob whose
    #: vocabulary is a switch accepts them.
    bool_words: tuple[str, str] | None = None

    @abstractmethod
    def auto_domain(self, ctx: KnobContext) -> Domain:
        """The domain ``auto`` stands for on this host."""

    def _word(self, value: Any) -> Any:
        if isinstance(value, bool) and self.bool_words is not None:
            return self.bool_words[int(value)]
        return value

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        kind = spec.kind
        if kind == "auto":
            return self.auto_domain(ctx)
        if kind == "range":
            raise DomainError(f"{self.name} takes choices, not a numeric range")
        values = [self._word(v) for v in spec.listed()]
        for value in values:
            if isinstance(value, bool) or isinstance(value, float) and not math.isfinite(value):
                raise DomainError(f"expected a string, got {value!r}", field=kind)
            text = str(value)
            if self.allowed is not None and text not in self.allowed:
                raise DomainError(f"expected one of {list(self.allowed)}, got {value!r}",
                                  field=kind)
            problem = self.refuse(text, ctx)
            if problem is not None:
                raise DomainError(problem, field=kind)
        return ChoiceDomain(tuple(str(v) for v in values))

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        """Why an explicit ``value`` (one of ``allowed``, if set) cannot run here; None when
        it can. A knob with a grammar, or with choices that need a library, says so here."""
        return None
