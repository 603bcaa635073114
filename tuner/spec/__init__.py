"""The study file: its text (UTF-8, size-limited), YAML read with the line of every value and
bounded against alias bombs and deep nesting, the pydantic models (``StudySpec`` and its
parts), the checks across fields, and the built-in workloads a study may name. Every problem
comes back as ``file:line: field: what was expected``. Fitting a study to a host is not done
here: ``parse_text``/``load_file`` take a ``fit`` function (``tuner.space.fit_to(host)``).

May import: the top-level modules (``errors``) only."""

from tuner.spec.consistency import FieldPath, Problem
from tuner.spec.load import Fit, StudyFileText, format_field, load_file, parse_text
from tuner.spec.models import (
    Budget,
    KnobSpec,
    Objective,
    ParserSpec,
    SamplerSpec,
    StudySpec,
    WorkloadSpec,
)
from tuner.spec.text import decode_text

__all__ = [
    "Budget",
    "FieldPath",
    "Fit",
    "KnobSpec",
    "Objective",
    "ParserSpec",
    "Problem",
    "SamplerSpec",
    "StudyFileText",
    "StudySpec",
    "WorkloadSpec",
    "decode_text",
    "format_field",
    "load_file",
    "parse_text",
]
