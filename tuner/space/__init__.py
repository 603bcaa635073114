"""A study fitted to a host: each knob's domain resolved on this machine (knobs it cannot
apply dropped with a reason), the constraints between knobs, the baselines as points of the
space, and what the study's workload means as a launch (command, parser, timeout, unit).

May import: the top-level modules, ``spec``, ``execution`` (the launch), ``knobs``."""

from tuner.space.baselines import ROLE_LABELS, baseline_values, vendor_recipe
from tuner.space.search_space import (
    BaselineTrial,
    Dimension,
    SearchSpace,
    SpaceError,
    build_space,
    config_key,
    fit_to,
)
from tuner.space.workload import parser_of, run_timeout, unit_of

__all__ = [
    "ROLE_LABELS",
    "BaselineTrial",
    "Dimension",
    "SearchSpace",
    "SpaceError",
    "baseline_values",
    "build_space",
    "config_key",
    "fit_to",
    "parser_of",
    "run_timeout",
    "unit_of",
    "vendor_recipe",
]
