"""Checks across the fields of one study that need no host: the metric a built-in reports,
the knobs screening names, baselines given once, and seeds in ``params`` that numpy takes
(other numbers are bounded by the models). Each problem is (path in the study, message),
like ``tuner.space.checks``."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tuner.spec import limits
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import StudySpec

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
            *_echo(spec)]


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
