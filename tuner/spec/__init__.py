"""Study files: YAML, validated with pydantic, errors with file:line and field."""

from tuner.spec.load import StudyFileText, format_field, load_file, parse_text
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
    "KnobSpec",
    "Objective",
    "ParserSpec",
    "SamplerSpec",
    "StudyFileText",
    "StudySpec",
    "WorkloadSpec",
    "decode_text",
    "format_field",
    "load_file",
    "parse_text",
]
