"""From a study's workload entry to the base of every launch: the argument list, working
directory and environment before any knob is applied, the per-run timeout and the parser.

A built-in runs in the interpreter ``workload.python`` names (``tuner.execution.runtimes``),
resolved on the machine that runs the study: ``target_of`` fills ``Target.python`` and
``Target.python_prefix`` from it, and ``base_builder`` starts that interpreter."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.execution.runtimes import (
    RuntimeProblem,
    is_foreign,
    probe_path,
    read_fingerprint,
    resolve,
    workloads_path,
)
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


#: Each framework's import name, the extra that installs it with tuner, and a package that
#: installs it in a runtime of one's own.
FRAMEWORKS = {"tensorflow": ("tensorflow", "tuner[tensorflow]", "tensorflow-cpu"),
              "torch": ("torch", "tuner[torch]", "torch")}


def missing_framework(spec: WorkloadSpec, target: Target) -> str | None:
    """Why the built-in cannot run in ``target.python`` (its framework is not installed
    there), with what to install; None when it can, or when that is for the machine that
    runs it to say (a generic host's target is tuner's interpreter on another machine)."""
    builtin = target.builtin
    if builtin is None or not builtin.needs_framework(spec.params):
        return None
    module, extra, package = FRAMEWORKS[builtin.runtime]
    if spec.python is None:
        if importlib.util.find_spec(module) is not None:
            return None
        return (f"built-in workload {builtin.name} needs {builtin.runtime}, which tuner's "
                f"Python ({sys.executable}) does not have: pip install '{extra}', or run it "
                f"in a runtime that has it (workload.python: NAME, after `tuner runtime "
                f"create NAME --package {package}`)")
    if runtime_probe(spec.python).get(builtin.runtime):
        return None
    return (f"built-in workload {builtin.name} needs {builtin.runtime}, which "
            f"workload.python {spec.python} does not have; install {package} there")


def runtime_probe(python: str) -> dict[str, Any]:
    """What the probe of runtime ``python`` (a name, or an interpreter's path) found: its
    frameworks' versions among them. Probes are recorded (a name) or cached (a path)."""
    settings = get_settings()
    runtime = resolve(python, runtimes_dir=settings.runtimes_dir)
    if runtime.name is not None:
        return dict(read_fingerprint(settings.runtimes_dir, runtime.name).get("probe") or {})
    return probe_path(runtime.python, cache_dir=settings.cache_dir)


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
