"""Custom knobs, so any program can be tuned: an environment variable (``env: NAME``) or a
command-line flag (``flag: --name``) over a range or choices given in the study file."""

from __future__ import annotations

from typing import Any

from tuner.knobs.base import UNSET, ChoiceDomain, Domain, DomainError, IntDomain, Knob, KnobContext
from tuner.launch import LaunchBuilder
from tuner.spec.models import KnobSpec


class _CustomKnob(Knob):
    family = "custom"

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        if spec.kind == "auto":
            raise DomainError("a custom knob has no host-derived domain; give {low, high, step}"
                              " or choices")
        if spec.kind == "range":
            assert spec.low is not None and spec.high is not None
            return IntDomain(spec.low, spec.high, spec.step or 1)
        return ChoiceDomain(tuple(spec.listed()))


class EnvVarKnob(_CustomKnob):
    def __init__(self, *, name: str, variable: str) -> None:
        self.name = name
        self.variable = variable
        self.summary = f"sets the environment variable {variable}"

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET:
            return
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        builder.set_env(self.variable, text)


class FlagKnob(_CustomKnob):
    """``--flag value``; a boolean ``true`` passes the bare flag and ``false`` omits it."""

    def __init__(self, *, name: str, flag: str) -> None:
        self.name = name
        self.flag = flag
        self.summary = f"passes the command-line flag {flag}"

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET or value is False:
            return
        builder.set_flag(self.flag, None if value is True else str(value))
