"""Checks of a study that need the workload registry and the parsers, before its knobs are
fitted to the host. Each returns problems as (path in the study, message)."""

from __future__ import annotations

import importlib.util

from tuner.execution.parsers import PARSER_PRESETS, metric_names
from tuner.space.workload import parser_of
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.consistency import FieldPath, Problem
from tuner.spec.models import StudySpec


def check_params(spec: StudySpec) -> list[Problem]:
    problems: list[Problem] = []
    workload = spec.workload
    if workload.builtin is None:
        return problems
    builtin = BUILTINS[workload.builtin]
    known = builtin.all_params()
    for key, value in workload.params.items():
        path: FieldPath = ("workload", "params", key)
        if key not in known:
            hint = (f"; {key} is a knob: tune or fix it under knobs" if key in builtin.knob_flags
                    else "")
            problems.append((path, f"unknown parameter {key!r} for {builtin.name}{hint}; "
                                   f"known: {', '.join(sorted(known))}"))
            continue
        param = known[key]
        numeric_ok = param.type is float and isinstance(value, int)
        if isinstance(value, bool) or not (isinstance(value, param.type) or numeric_ok):
            problems.append((path, f"expected a {param.type.__name__}, got {value!r}"))
        elif param.choices and value not in param.choices:
            problems.append((path, f"expected one of {list(param.choices)}, got {value!r}"))
        elif (isinstance(value, int | float) and param.minimum is not None
              and value < param.minimum):
            bound = "a positive value" if param.minimum > 0 else f"a value >= {param.minimum:g}"
            problems.append((path, f"expected {bound}, got {value!r}"))
    return problems


def check_objective(spec: StudySpec) -> list[Problem]:
    parser = parser_of(spec.workload)
    if parser.preset is not None and parser.preset not in PARSER_PRESETS:
        return [(("workload", "parser"), f"unknown parser preset {parser.preset!r}; expected "
                                         f"one of {', '.join(PARSER_PRESETS)}, {{regex: ...}} "
                                         "or {json: key}")]
    names = metric_names(parser)
    if names is not None and spec.objective.metric not in names:
        return [(("objective", "metric"),
                 f"the parser yields {sorted(names)}, not {spec.objective.metric!r}")]
    return []


#: Samplers that need a package beyond tuner's own, with how to get it.
SAMPLER_NEEDS = {"gp": ("torch", "PyTorch: pip install 'tuner[torch]' (or torch)"),
                 "cmaes": ("cmaes", "the cmaes package: pip install cmaes")}


def sampler_unavailable(name: str) -> str | None:
    """Why sampler ``name`` cannot run here (None: it can)."""
    need = SAMPLER_NEEDS.get(name)
    if need is None or importlib.util.find_spec(need[0]) is not None:
        return None
    return f"the {name} sampler needs {need[1]}"
