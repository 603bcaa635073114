"""A study's runs as rows, for spreadsheets and notebooks (``tuner export``).

One row per run of every trial (a trial that never ran, or whose runs were not recorded,
gives one row without a run): the study, the trial (number, role, state, value), the run
(index, status, value of the study's metric, its seconds), the reason it failed or was pruned,
the knobs it applied and the environment the study was measured in. In CSV and Parquet the
knobs and the environment are columns ``knob.NAME`` and ``env.KEY``; in JSON they are
objects. Parquet (``pip install 'tuner[parquet]'``: pyarrow) keeps each column's type: a
column whose values are all numbers stays numeric, one that mixes types (a knob set to
``4`` in one trial and ``auto``'s word in another) becomes text.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import optuna

from tuner.store.attributes import (
    FINGERPRINT,
    REASON,
    ROLE,
    RUNS,
    SAMPLES,
    applied_of,
    spec_of,
)

FORMATS = ("csv", "json", "parquet")
#: Each format's media type (the API's Content-Type).
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json",
               "parquet": "application/vnd.apache.parquet"}


class ExportUnavailable(RuntimeError):
    """The format needs a package this installation lacks (the message says which)."""


def run_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every run of ``study`` as a row (see the module docstring), trials in order."""
    attrs = study.user_attrs
    metric = spec_of(attrs).get("objective", {}).get("metric", "throughput")
    environment = dict(FINGERPRINT.get(attrs))
    rows: list[dict[str, Any]] = []
    for trial in study.get_trials(deepcopy=False):
        base = {"study": study.study_name, "trial": trial.number, "role": ROLE.get(trial),
                "state": trial.state.name.lower(), "trial_value": trial.value}
        knobs = applied_of(trial.user_attrs, trial.params)
        runs = RUNS.get(trial)
        samples = SAMPLES.get(trial)
        count = max(len(runs), len(samples))
        for index in range(count) if count else [None]:
            run = runs[index] if index is not None and index < len(runs) else None
            value = run.metrics.get(metric) if run is not None else None
            if value is None and index is not None and index < len(samples):
                value = samples[index]
            rows.append({**base, "run": index, "run_status": run.status if run else None,
                         "run_value": value, "seconds": run.seconds if run else None,
                         "reason": (run.reason if run and run.reason else REASON.get(trial)),
                         "knobs": dict(knobs), "environment": environment})
    return rows


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if k not in ("knobs", "environment")}
    flat.update({f"knob.{k}": v for k, v in row["knobs"].items()})
    flat.update({f"env.{k}": v for k, v in row["environment"].items()})
    return flat


def export(study: optuna.Study, fmt: str) -> str:
    """The rows of ``study`` as ``csv`` or ``json`` text."""
    rows = run_rows(study)
    if fmt == "json":
        return json.dumps(rows, indent=1, default=str)
    if fmt != "csv":
        raise ValueError(f"unknown text format {fmt!r}; expected csv or json")
    flat = [_flat(row) for row in rows]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_columns(flat), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in flat)
    return out.getvalue()


def export_bytes(study: optuna.Study, fmt: str) -> bytes:
    """The rows of ``study`` in any of ``FORMATS``, as the bytes of a file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt != "parquet":
        return export(study, fmt).encode()
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ExportUnavailable("Parquet needs pyarrow: pip install 'tuner[parquet]'") from exc
    flat = [_flat(row) for row in run_rows(study)]
    columns = {name: _typed([row.get(name) for row in flat]) for name in _columns(flat)}
    out = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), out)
    return bytes(out.getvalue().to_pybytes())


def _columns(flat: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in flat for key in row))


def _typed(values: list[Any]) -> list[Any]:
    """A column Parquet can type: as it is when its values share one type (ints among
    floats count as floats), else every value as text (None stays missing)."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} and float in kinds:
        return [None if v is None else float(v) for v in values]
    if len(kinds) <= 1 and not kinds & {dict, list, tuple}:
        return values
    return [None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
            for v in values]
