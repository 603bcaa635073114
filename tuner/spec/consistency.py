"""Checks across the fields of one study that need no host: the metric a built-in reports,
the knobs screening names, baselines given once, seeds in ``params`` that numpy takes
(other numbers are bounded by the models), and the ``{knob}`` placeholders of a command's
arguments (``template_fields``: plain names of the study's knobs; ``{{``/``}}`` are literal
braces). Each problem is (path in the study, message), like ``tuner.space.checks``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from string import Formatter

from tuner.spec import limits
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import StudySpec, WorkloadSpec

#: Where a value sits in a study (keys and list indexes): ``("knobs", "intra_op", "high")``.
FieldPath = tuple[str | int, ...]
#: A problem found in a study: where it is, and what was expected.
Problem = tuple[FieldPath, str]
#: What the built-in workloads report (``workloads._common.measure``); replay reports the
#: metric its surface file names, so it is not checked here.
BUILTIN_METRICS: dict[str, tuple[str, ...]] = {
    name: ("throughput",) for name in BUILTINS if name != "replay"}
SEED_PARAMS = ("seed",)


def study_problems(spec: StudySpec) -> list[Problem]:
    return [*_metric(spec), *_screening(spec), *_baselines(spec), *_params(spec),
            *_echo(spec), *_templates(spec)]


def _metric(spec: StudySpec) -> Iterator[Problem]:
    builtin = spec.workload.builtin
    reported = BUILTIN_METRICS.get(builtin) if builtin is not None else None
    if reported is not None and spec.objective.metric not in reported:
        yield (("objective", "metric"),
               f"unknown metric {spec.objective.metric!r}: the built-in {builtin} reports "
               f"{', '.join(reported)}")


def _screening(spec: StudySpec) -> Iterator[Problem]:
    if not isinstance(spec.screening, list):
        return
    seen: set[str] = set()
    for index, name in enumerate(spec.screening):
        if name not in spec.knobs:
            known = ", ".join(sorted(spec.knobs)) or "none"
            yield (("screening", index),
                   f"unknown knob {name!r}: screening tests knobs of this study's `knobs` "
                   f"(here: {known})")
        elif name in seen:
            yield (("screening", index), f"knob {name!r} is listed twice")
        seen.add(name)


def _baselines(spec: StudySpec) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, name in enumerate(spec.baselines):
        if name in seen:
            yield (("baselines", index), f"baseline {name!r} is listed twice")
        seen.add(name)


def _params(spec: StudySpec) -> Iterator[Problem]:
    for key, value in spec.workload.params.items():
        path: FieldPath = ("workload", "params", key)
        if key in SEED_PARAMS and isinstance(value, int) and not isinstance(value, bool) \
                and not 0 <= value <= limits.MAX_SEED:
            yield path, f"expected a seed, an integer in 0..{limits.MAX_SEED}, got {value!r}"


def _echo(spec: StudySpec) -> Iterator[Problem]:
    """``workload.echo`` reads back knob values from a command's output: only commands have
    it (built-ins print their SETTINGS line), and each of its groups names a knob."""
    echo = spec.workload.echo
    if echo is None:
        return
    path: FieldPath = ("workload", "echo")
    if spec.workload.command is None:
        yield path, ("echo belongs to command workloads (built-ins report what they ran "
                     "with in their SETTINGS line)")
        return
    known = ", ".join(sorted(spec.knobs)) or "none"
    for group in re.compile(echo).groupindex:
        if group not in spec.knobs:
            yield path, (f"group {group!r} names no knob of this study; each named group "
                         f"reads back one knob's value (knobs here: {known})")


def template_fields(argument: str) -> list[str]:
    """The knob names of the ``{name}`` placeholders in one command argument, in order
    (``{{`` and ``}}`` are literal braces). Raises ``ValueError`` for anything but plain
    names: ``{}``, ``{0}``, ``{name!r}``, ``{name:fmt}``, ``{a.b}``, ``{a[0]}``, unbalanced
    braces."""
    try:
        parsed = list(Formatter().parse(argument))
    except ValueError as exc:
        raise ValueError(f"unbalanced braces ({exc}); a placeholder is {{name}}, and "
                         "{{ and }} are literal braces") from None
    names: list[str] = []
    for _, name, fmt, conversion in parsed:
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (
            f":{fmt}" if fmt else "") + "}"
        if not name or name.isdigit():
            why = "names no knob"
        elif conversion is not None or fmt:
            why = "has a conversion or format spec (the value is written as text)"
        elif any(c in name for c in ".[]"):
            why = "reads an attribute or an index"
        else:
            names.append(name)
            continue
        raise ValueError(f"placeholder {shown} {why}; only plain {{knob_name}} placeholders "
                         "are allowed ({{ and }} are literal braces)")
    return names


def placeholders_of(workload: WorkloadSpec) -> frozenset[str]:
    """The knob names a command's arguments refer to (arguments with a malformed template,
    reported by ``study_problems``, left out)."""
    names: set[str] = set()
    for argument in workload.command or ():
        try:
            names.update(template_fields(argument))
        except ValueError:
            continue
    return frozenset(names)


def _templates(spec: StudySpec) -> Iterator[Problem]:
    """Every placeholder names a knob of the study; a switch (a knob with true/false
    values) follows text that does not end in ``=``: ``false`` leaves the argument out and
    ``true`` writes nothing in its place, so ``--name={switch}`` would pass ``--name=``."""
    for index, argument in enumerate(spec.workload.command or ()):
        path: FieldPath = ("workload", "command", index)
        try:
            template_fields(argument)
        except ValueError as exc:
            yield path, f"argument {argument!r}: {exc}"
            continue
        for literal, name, _, _ in Formatter().parse(argument):
            knob = spec.knobs.get(name) if name is not None else None
            if name is None:
                continue
            if knob is None:
                known = ", ".join(sorted(spec.knobs)) or "none"
                yield path, (f"argument {argument!r}: placeholder {{{name}}} names no knob "
                             f"of this study (its knobs: {known}); {{{{ and }}}} are "
                             "literal braces")
            elif any(isinstance(v, bool) for v in [*knob.listed(), knob.default]) and (
                    not literal or literal.endswith("=")):
                yield path, (f"argument {argument!r}: {name} is a switch (true/false): true "
                             f"writes nothing in place of {{{name}}} and false leaves the "
                             "argument out, so write the option before it, e.g. "
                             f"'--{name}{{{name}}}'; for the words, quote them: "
                             "['true', 'false']")
