"""What a ci run compares with: the deployed settings, their speedup over the defaults when
they were chosen, the environment they were chosen in, and the study to warm-start from.

Two sources:

* a ``best.json`` a team committed (``--previous``): what is deployed is exactly what the
  file says (``knobs``), with its ``speedups.defaults`` and ``environment``;
* the study database: the latest recommendation tuner made for the study. That is the
  newest ci run's new settings when it found better ones (improved, regressed), else the
  settings it checked, else the study's own answer (its confirmed speedups and fingerprint).

A committed file is the better source in CI (it says what is really deployed); the
database one assumes the team deployed what tuner last recommended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tuner.errors import NotFoundError, TunerError
from tuner.results.summary import summarize
from tuner.store import database as store
from tuner.store.attributes import CI_RUNS, FINGERPRINT

#: The largest best.json read (bytes): a settings file is a few kilobytes.
MAX_FILE_BYTES = 1_000_000


class PreviousError(TunerError):
    """The previous result cannot be read (names the file or study, and what was expected)."""


@dataclass(frozen=True, kw_only=True)
class Previous:
    #: Where the deployed settings come from, for people.
    source: str
    knobs: dict[str, Any]
    #: Their paired speedup over the framework defaults when chosen (ratio, low, high,
    #: rounds, level), if known.
    speedup_then: dict[str, Any] | None
    environment: dict[str, Any]
    #: The study whose trials warm-start a re-tune (None: only the deployed settings).
    source_study: str | None = None
    #: The value of that study's defaults baseline (puts its trials on the new scale).
    defaults_value: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def from_file(path: Path) -> Previous:
    """The deployed settings of a ``best.json`` (``tuner best --format json``)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PreviousError(f"{path}: cannot read the previous settings ({exc.strerror})"
                            ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise PreviousError(f"{path}: larger than {MAX_FILE_BYTES} bytes; expected a "
                            "best.json written by tuner")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PreviousError(f"{path}: not JSON ({exc}); expected a best.json written by "
                            "tuner") from None
    if not isinstance(data, dict):
        raise PreviousError(f"{path}: expected a JSON object (a best.json), got "
                            f"{type(data).__name__}")
    knobs = data.get("knobs")
    if not isinstance(knobs, dict):
        raise PreviousError(f"{path}: field 'knobs': expected an object of knob values, got "
                            f"{type(knobs).__name__}")
    speedups = data.get("speedups")
    then = speedups.get("defaults") if isinstance(speedups, dict) else None
    environment = data.get("environment")
    return Previous(source=f"best.json ({path})", knobs=dict(knobs),
                    speedup_then=_interval(then),
                    environment=dict(environment) if isinstance(environment, dict) else {})


def from_study(study: optuna.Study) -> Previous:
    """The latest recommendation tuner made for ``study`` (see the module)."""
    history = CI_RUNS.get(study)
    for record in reversed(history):
        new = record.get("new_best")
        environment = record.get("environment") or {}
        if record.get("verdict") in ("improved", "regressed") and isinstance(new, dict) \
                and isinstance(new.get("knobs"), dict):
            return Previous(source=f"ci run {record.get('run')}'s new settings "
                                   f"({new.get('label')})",
                            knobs=dict(new["knobs"]),
                            speedup_then=_interval(new.get("over_defaults")),
                            environment=dict(environment),
                            source_study=record.get("retuned") or study.study_name,
                            history=history)
        deployed = record.get("deployed")
        if isinstance(deployed, dict) and isinstance(deployed.get("knobs"), dict):
            return Previous(source=f"the settings ci run {record.get('run')} checked",
                            knobs=dict(deployed["knobs"]),
                            speedup_then=_interval(record.get("speedup_now")
                                                   or record.get("speedup_then")),
                            environment=dict(environment),
                            source_study=record.get("retuned") or study.study_name,
                            history=history)
    summary = summarize(study)
    if summary.best is None:
        raise PreviousError(f"study {study.study_name!r} has no completed trial: there are no "
                            "deployed settings to check; run `tuner tune` first, or give "
                            "--previous best.json")
    then = summary.speedups.get("defaults") if summary.confirmed else None
    return Previous(source=f"study {study.study_name}'s answer (trial {summary.best.number})",
                    knobs=dict(summary.best.applied), speedup_then=_interval(then),
                    environment=dict(FINGERPRINT.get(study)),
                    source_study=study.study_name, history=history)


def home_study(storage_url: str, name: str) -> optuna.Study | None:
    """The study ``name`` (where ci keeps its history), None when the storage lacks it."""
    try:
        return store.load(storage_url, name, heartbeat=False)
    except NotFoundError:
        return None


def _interval(raw: Any) -> dict[str, Any] | None:
    """A stored speedup with a usable interval, else None."""
    if not isinstance(raw, dict):
        return None
    try:
        ratio, low, high = (float(raw[k]) for k in ("ratio", "low", "high"))
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 < low <= ratio <= high):
        return None
    return {"ratio": ratio, "low": low, "high": high, "rounds": raw.get("rounds"),
            "level": raw.get("level", 0.95)}
