"""Least privilege for submissions: what in a study makes a worker run code chosen by the
submitter (or read a file of its choosing), and therefore needs the admin token.

- a ``command`` workload;
- a built-in whose ``workload.python`` is a path (it names a program to run; a runtime
  name is fine: only the admin of the machine creates runtimes, ``tuner runtime create``);
- a custom ``{env: NAME}`` knob whose variable is not on ``tuner.knobs.custom.SAFE_ENV``,
  or whose values are not plain numbers/keywords;
- a custom ``{flag: ...}`` knob on a built-in workload (it could re-point the built-in's own
  options, e.g. a file it reads);
- a built-in parameter that names a file outside the project's data folder for it (the
  replay workload's ``surface`` outside ``bench/surfaces``);
- a ``ci.version_command`` (``tuner ci`` runs it to read the workload's version);
- a system knob (THP, NUMA balancing, prefetchers, frequency, ...: it changes the whole
  machine, as root, for every process on it).

``refused_system_knobs`` is the service's own policy on top: with ``TUNER_SYSTEM_KNOBS``
set to ``none`` (or a list) the service refuses studies naming the others, whatever token.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from tuner.knobs import system_knobs
from tuner.knobs.custom import env_needs_admin
from tuner.settings import Settings
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import KnobSpec, StudySpec

#: The names of the knobs that change the whole machine.
SYSTEM_KNOB_NAMES = frozenset(knob.name for knob in system_knobs())

#: The project's checkout (files_in folders are relative to it).
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _knob_values(spec: KnobSpec) -> list[object]:
    """Every value the knob may set, its ``default`` included (checked on its own too, so
    the allow-list never rests on another check keeping the default inside the domain)."""
    default: list[object] = [] if spec.default is None else [spec.default]
    if spec.kind == "range":
        return default  # the range itself holds integers only
    return [*spec.listed(), *default]


def _inside(value: str, folder: str) -> bool:
    path = Path(value)
    if not path.is_absolute():
        return False
    root = (PROJECT_ROOT / folder).resolve()
    return path.resolve().is_relative_to(root)


def admin_reasons(spec: StudySpec) -> list[str]:
    """Why the study ``spec`` needs the admin token; empty: the api token will do."""
    reasons: list[str] = []
    workload = spec.workload
    if workload.command is not None:
        reasons.append(f"{spec.name}: it runs a command")
    if workload.python is not None and workload.python.startswith("/"):
        reasons.append(f"{spec.name}.workload.python: names an interpreter by its path (a "
                       "runtime made by `tuner runtime create NAME` takes the api token)")
    for name, knob in spec.knobs.items():
        if knob.env is not None:
            why = env_needs_admin(knob.env, _knob_values(knob))
            if why:
                reasons.append(f"{spec.name}.knobs.{name}: {why}")
        if knob.flag is not None and workload.builtin is not None:
            reasons.append(f"{spec.name}.knobs.{name}: a custom flag on a built-in workload")
        if name in SYSTEM_KNOB_NAMES and not knob.is_custom:
            reasons.append(f"{spec.name}.knobs.{name}: a system knob (it changes the whole "
                           "machine for every process on it)")
    if spec.ci.version_command is not None:
        reasons.append(f"{spec.name}.ci.version_command: runs a program to read the "
                       "workload's version")
    if workload.builtin is not None:
        params = BUILTINS[workload.builtin].all_params()
        for key, value in workload.params.items():
            param = params.get(key)
            if param is not None and param.files_in and not (
                    isinstance(value, str) and _inside(value, param.files_in)):
                reasons.append(f"{spec.name}.workload.params.{key}: names a file outside "
                               f"{PROJECT_ROOT / param.files_in} (expected an absolute path "
                               "inside it)")
    return reasons


def stored_admin_reasons(spec_data: object) -> list[str]:
    """``admin_reasons`` of a stored study (its ``spec`` attribute); a spec that no longer
    validates (rewritten through optuna-dashboard, say) needs the admin token too."""
    try:
        spec = StudySpec.model_validate(spec_data)
    except (ValidationError, TypeError, ValueError):
        return ["its stored study file does not validate"]
    return admin_reasons(spec)


def refused_system_knobs(spec: StudySpec, settings: Settings) -> list[str]:
    """The system knobs of ``spec`` this service's ``system_knobs`` setting refuses, as
    ``STUDY.knobs.NAME`` paths."""
    return [f"{spec.name}.knobs.{name}" for name, knob in spec.knobs.items()
            if name in SYSTEM_KNOB_NAMES and not knob.is_custom
            and not settings.system_knob_allowed(name)]
