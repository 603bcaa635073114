"""Study files for tests, built from data rather than by editing YAML strings.

``study_yaml(**overrides)`` is the text of a one-study file: a small built-in study (ResNet's
small preset, half a second, one interval) with the given top-level keys replaced;
``study_spec(**overrides)`` is the same study validated (``tuner.spec.parse_text``), as
``tuner validate`` would read it. Overrides replace whole keys (``workload=...`` replaces the
whole workload); ``params=`` is a shorthand that replaces only the workload's parameters.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tuner.spec import parse_text
from tuner.spec.models import StudySpec

#: A quick ResNet run: the small preset, half a second, one interval, one warm-up step.
QUICK_PARAMS: dict[str, Any] = {"preset": "small", "seconds": 0.5, "intervals": 1,
                                "warmup_steps": 1}
DEFAULTS: dict[str, Any] = {"name": "test-study",
                            "workload": {"builtin": "resnet", "params": QUICK_PARAMS}}


def study_data(**overrides: Any) -> dict[str, Any]:
    """The study as data: ``DEFAULTS`` with ``overrides`` (see the module)."""
    data = copy.deepcopy(DEFAULTS)
    params = overrides.pop("params", None)
    data.update(copy.deepcopy(overrides))
    if params is not None:
        data["workload"] = {**data["workload"], "params": dict(params)}
    return data


def study_yaml(**overrides: Any) -> str:
    """The text of a one-study file (see the module)."""
    return yaml.safe_dump(study_data(**overrides), sort_keys=False)


def study_spec(**overrides: Any) -> StudySpec:
    """The study validated, as the study file's loader reads it (see the module)."""
    return parse_text(study_yaml(**overrides), "<test study>").studies[0]
