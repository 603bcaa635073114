"""Load and validate study files: YAML with line numbers, pydantic for structure, the checks
across fields, then (with a ``fit`` function: ``tuner.space.fit_to(host)``) the knob
catalogue and the host for meaning. Every problem comes back as ``file:line: field:
what was expected``; all problems of a file are reported at once."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tuner.errors import SpecError, SpecIssue
from tuner.spec import limits, models
from tuner.spec.consistency import FieldPath, Problem, study_problems
from tuner.spec.text import read
from tuner.spec.yaml_source import Located, load_yaml


@dataclass(frozen=True)
class StudyFileText:
    """A validated file: its studies and, for each, where it sits in the file."""

    source: str
    text: str
    studies: list[models.StudySpec]
    prefixes: list[FieldPath]


@cache
def _all_field_names() -> set[str]:
    names: set[str] = set()
    for obj in vars(models).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            for fname, finfo in obj.model_fields.items():
                names.add(finfo.alias or fname)
    return names


def format_field(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        close = get_close_matches(name, _all_field_names(), n=2) if len(name) < 100 else []
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown field {_short(name)}{hint}"
    if kind == "missing":
        return "required field is missing"
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    got = error.get("input")
    if kind not in ("model_type", "dict_type") and not isinstance(got, dict | list):
        return f"{msg} (got {_short(got)})"
    return msg


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:70] + "...(cut)"


_UNION_TAGS = {"bool", "int", "float", "str", "strict-bool", "strict-int", "strict-float",
               "strict-str", "function-before[parse_duration(), constrained-float]",
               "function-after", "nullable"}
#: Errors of a bound (a union member of the right type, out of range): shown alone.
_BOUNDS = {"finite_number", "less_than_equal", "greater_than_equal", "less_than",
           "greater_than", "too_long", "string_too_long", "too_short"}


def _clean_loc(loc: Sequence[str | int]) -> FieldPath:
    """Drop pydantic's union-member tags (``int``, ``literal['a','b']``, ``list[str]``...)
    from an error location; YAML keys of a study file never contain brackets."""
    return tuple(p for p in loc if not (isinstance(p, str) and (
        p in _UNION_TAGS or p.startswith(("function-", "constrained-")) or "[" in p)))


def _issues_from_validation(exc: ValidationError, located: Located, prefix: FieldPath,
                            shown_prefix: FieldPath, budget: int) -> tuple[list[SpecIssue], int]:
    """Pydantic errors, with union alternatives of one field merged into one issue: the first
    ``budget`` of them (a line and a hint cost a walk and a fuzzy match), and how many more
    there are."""
    grouped: dict[FieldPath, list[dict[str, Any]]] = {}
    for error in exc.errors():
        loc = _clean_loc(error["loc"])
        grouped.setdefault(loc, []).append(dict(error))
    issues: list[SpecIssue] = []
    for loc, errors in list(grouped.items())[:max(0, budget)]:
        doc_path = prefix + loc
        bounds = [e for e in errors if e["type"] in _BOUNDS]
        errors = bounds or errors
        if errors[0]["type"] == "missing":
            line = located.line_of(doc_path[:-1])
        else:
            line = located.key_line(doc_path)
        if len(errors) > 1 and all("type" in e["type"] for e in errors):
            got = errors[0].get("input")
            message = f"expected a number, a string or a boolean (got {_short(got)})"
        else:
            message = "; ".join(dict.fromkeys(_message(e) for e in errors))
        issues.append(SpecIssue(source=located.source, line=line,
                                field=format_field(shown_prefix + loc), message=message))
    return issues, len(grouped) - len(issues)


def _split_studies(located: Located) -> tuple[list[Any], list[FieldPath]] | SpecIssue:
    data = located.data
    if isinstance(data, dict) and "studies" in data:
        extra = sorted(set(data) - {"studies"})
        if extra:
            return SpecIssue(source=located.source, line=located.key_line((extra[0],)),
                             field=str(extra[0]),
                             message="unknown top-level key; a file holds `studies: [...]`, a "
                                     "list of studies, or one study")
        studies = data["studies"]
        if not isinstance(studies, list) or not studies:
            return SpecIssue(source=located.source, line=located.key_line(("studies",)),
                             field="studies", message="expected a non-empty list of studies")
        if len(studies) > limits.MAX_STUDIES:
            return SpecIssue(source=located.source, line=located.key_line(("studies",)),
                             field="studies", message=f"{len(studies)} studies; a file may "
                                                      f"hold at most {limits.MAX_STUDIES}")
        return studies, [("studies", i) for i in range(len(studies))]
    if isinstance(data, list):
        if not data:
            return SpecIssue(source=located.source, line=located.line_of(()), field="",
                             message="expected at least one study")
        if len(data) > limits.MAX_STUDIES:
            return SpecIssue(source=located.source, line=located.line_of(()), field="",
                             message=f"{len(data)} studies; a file may hold at most "
                                     f"{limits.MAX_STUDIES}")
        return data, [(i,) for i in range(len(data))]
    if isinstance(data, dict):
        return [data], [()]
    expected = ("expected a study (a mapping with name, workload, knobs...) or a list of "
                "studies")
    if data is None and located.root is None:
        return SpecIssue(source=located.source, line=1, field="",
                         message=f"the file holds no study (it is empty or only comments); "
                                 f"{expected}")
    got = "null" if data is None else f"a single value ({_short(data)})"
    return SpecIssue(source=located.source, line=located.line_of(()), field="",
                     message=f"{expected}, got {got}")


#: Fits one validated study to a host: the problems found, each with its path in the study.
#: ``tuner.space.fit_to(host)`` makes one; the loader only places the problems on lines.
Fit = Callable[[models.StudySpec], list[Problem]]


def parse_text(text: str, source: str, *, fit: Fit | None = None,
               only: Collection[str] | None = None) -> StudyFileText:
    """Validate a study file's text. With ``fit`` (``tuner.space.fit_to(host)``), also fit
    every study to that host (knob names, domains, availability), or only the studies named
    in ``only`` (those about to run). Raises ``SpecError``."""
    located = load_yaml(text, source)
    split = _split_studies(located)
    if isinstance(split, SpecIssue):
        raise SpecError([split])
    raw_studies, prefixes = split
    issues: list[SpecIssue] = []
    hidden = 0  # issues found but not listed
    studies: list[models.StudySpec] = []
    valid_prefixes: list[FieldPath] = []
    for raw, prefix in zip(raw_studies, prefixes, strict=True):
        shown = ("studies", prefix[-1]) if prefix else ()
        try:
            studies.append(models.StudySpec.model_validate(raw))
            valid_prefixes.append(prefix)
        except ValidationError as exc:
            found, more = _issues_from_validation(exc, located, prefix, shown,
                                                  limits.MAX_ISSUES - len(issues))
            issues += found
            hidden += more
    seen: set[str] = set()
    for study, prefix in zip(studies, valid_prefixes, strict=True):
        shown_prefix: FieldPath = ("studies", prefix[-1]) if prefix else ()
        for path, message in study_problems(study):
            issues.append(SpecIssue(source=source, line=located.key_line(prefix + path),
                                    field=format_field(shown_prefix + path), message=message))
        if study.name in seen:
            issues.append(SpecIssue(source=source, line=located.key_line(prefix + ("name",)),
                                    field=format_field(("studies", prefix[-1], "name")),
                                    message=f"study name {study.name!r} is used twice"))
        seen.add(study.name)
    if fit is not None and len(issues) < limits.MAX_ISSUES:
        fitted = [(s, p) for s, p in zip(studies, valid_prefixes, strict=True)
                  if only is None or s.name in only]
        issues += _host_issues([s for s, _ in fitted], [p for _, p in fitted], located, fit,
                               limits.MAX_ISSUES - len(issues))
    issues.sort(key=lambda i: (i.line is None, i.line or 0))
    hidden += max(0, len(issues) - limits.MAX_ISSUES)
    issues = issues[:limits.MAX_ISSUES]
    if len(issues) == limits.MAX_ISSUES:
        rest = f"{hidden} more issues" if hidden else "perhaps more issues"
        issues.append(SpecIssue(source=source, line=None, field="", message=(
            f"and {rest}; checking stopped after the first {limits.MAX_ISSUES}")))
    if issues:
        raise SpecError(issues)
    return StudyFileText(source=source, text=text, studies=studies, prefixes=valid_prefixes)


def _host_issues(studies: list[models.StudySpec], prefixes: list[FieldPath], located: Located,
                 fit: Fit, budget: int) -> list[SpecIssue]:
    """What fitting each study finds, until ``budget`` issues are found."""
    issues: list[SpecIssue] = []
    for study, prefix in zip(studies, prefixes, strict=True):
        if len(issues) >= budget:
            break
        shown: FieldPath = ("studies", prefix[-1]) if prefix else ()
        for path, message in fit(study):
            issues.append(SpecIssue(source=located.source, line=located.key_line(prefix + path),
                                    field=format_field(shown + path), message=message))
    return issues


def load_file(path: str | Path, *, fit: Fit | None = None,
              only: Collection[str] | None = None) -> StudyFileText:
    return parse_text(read(path), str(path), fit=fit, only=only)
