"""From a study's workload entry to the base of every launch: the argument list, working
directory and environment before any knob is applied, the per-run timeout and the parser.

A built-in runs in the interpreter ``workload.python`` names (``tuner.execution.runtimes``),
resolved on the machine that runs the study: ``target_of`` fills ``Target.python`` and
``Target.python_prefix`` from it, and ``base_builder`` starts that interpreter."""

from __future__ import annotations

import sys

from tuner.execution.launch import LaunchBuilder
from tuner.execution.runtimes import RuntimeProblem, is_foreign, resolve, workloads_path
from tuner.host import Host
from tuner.knobs.base import Target
from tuner.settings import get_settings
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import ParserSpec, WorkloadSpec

DEFAULT_COMMAND_TIMEOUT = 600.0
PROTOCOL = ParserSpec(preset="protocol")


def preset_of(spec: WorkloadSpec) -> str:
    return str(spec.params.get("preset", "small"))


class PythonProblem(ValueError):
    """``workload.python`` names no usable interpreter on this machine (the message says
    which runtimes exist, or what is wrong with the path)."""


def target_of(spec: WorkloadSpec, host: Host | None = None) -> Target:
    """What the knobs apply to. ``workload.python`` is resolved on a ``local`` host (the one
    that runs the study: its runtimes are there); on a generic one (a service whose workers
    run elsewhere) it is left for the worker to resolve. Raises ``PythonProblem``."""
    builtin = BUILTINS[spec.builtin] if spec.builtin else None
    python, prefix = sys.executable, sys.prefix
    if builtin is not None and spec.python is not None and (host is None or host.local):
        try:
            runtime = resolve(spec.python, runtimes_dir=get_settings().runtimes_dir)
        except RuntimeProblem as exc:
            raise PythonProblem(str(exc)) from exc
        python, prefix = runtime.python, runtime.prefix
    return Target(builtin=builtin, runtime=spec.kind_of_runtime, preset=preset_of(spec),
                  python=python, python_prefix=prefix)


def base_builder(spec: WorkloadSpec, *, python: str = sys.executable) -> LaunchBuilder:
    """The launch before knobs: ``PYTHON -m workloads.NAME --preset P ...`` for a built-in
    (``python``: ``Target.python``; a foreign interpreter gets a ``PYTHONPATH`` that holds
    tuner's ``workloads`` package and nothing else of tuner's), the command list (with its
    cwd and env) otherwise, whose ``{knob}`` placeholders the knobs' values fill."""
    if spec.builtin is not None:
        builtin = BUILTINS[spec.builtin]
        params = builtin.all_params()
        argv = [python, "-m", builtin.module, "--preset", preset_of(spec)]
        for key, value in sorted(spec.params.items()):
            if key != "preset":
                argv += [params[key].flag, str(value)]
        env = ({"PYTHONPATH": workloads_path(get_settings().cache_dir)}
               if is_foreign(python) else {})
        return LaunchBuilder(argv=argv, env=env)
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
