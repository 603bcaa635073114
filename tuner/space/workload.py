"""From a study's workload entry to the base of every launch: the argument list, working
directory and environment before any knob is applied, the per-run timeout and the parser."""

from __future__ import annotations

import sys

from tuner.execution.launch import LaunchBuilder
from tuner.knobs.base import Target
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import ParserSpec, WorkloadSpec

DEFAULT_COMMAND_TIMEOUT = 600.0
PROTOCOL = ParserSpec(preset="protocol")


def preset_of(spec: WorkloadSpec) -> str:
    return str(spec.params.get("preset", "small"))


def target_of(spec: WorkloadSpec) -> Target:
    builtin = BUILTINS[spec.builtin] if spec.builtin else None
    return Target(builtin=builtin, runtime=spec.kind_of_runtime, preset=preset_of(spec))


def base_builder(spec: WorkloadSpec, *, python: str = sys.executable) -> LaunchBuilder:
    """The launch before knobs: ``python -m workloads.NAME --preset P ...`` for a built-in,
    the command list (with its cwd and env) otherwise, whose ``{knob}`` placeholders the
    knobs' values fill."""
    if spec.builtin is not None:
        builtin = BUILTINS[spec.builtin]
        params = builtin.all_params()
        argv = [python, "-m", builtin.module, "--preset", preset_of(spec)]
        for key, value in sorted(spec.params.items()):
            if key != "preset":
                argv += [params[key].flag, str(value)]
        return LaunchBuilder(argv=argv)
    assert spec.command is not None
    return LaunchBuilder(argv=list(spec.command), env=dict(spec.env), cwd=spec.cwd,
                         templated=True)


def run_timeout(spec: WorkloadSpec) -> float:
    if spec.timeout is not None:
        return spec.timeout
    if spec.builtin is not None:
        return BUILTINS[spec.builtin].timeout_for(preset_of(spec))
    return DEFAULT_COMMAND_TIMEOUT


def parser_of(spec: WorkloadSpec) -> ParserSpec:
    return spec.parser if spec.parser is not None else PROTOCOL


def unit_of(spec: WorkloadSpec) -> str:
    if spec.builtin is None:
        return ""
    builtin = BUILTINS[spec.builtin]
    return builtin.mode_units.get(str(spec.params.get("mode", "")), builtin.unit)
