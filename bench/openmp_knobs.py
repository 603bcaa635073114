"""Where the OpenMP and allocator knobs change throughput, and by how much: each case is a
built-in workload in one Python runtime, run at its defaults and with one probe at a time
(a knob, or a knob with the runtime it needs), in interleaved rounds through tuner's own
launcher. Each probe's paired ratio to the defaults gets a 95% interval from the rounds, and
the libraries its process mapped are listed, so "no effect" can be told apart from "not
loaded".

    python bench/openmp_knobs.py [--rounds 5] [--only LABEL ...]

The TensorFlow 2.14 case needs the Intel runtime (``tuner runtime create intel-tf --package
intel-tensorflow==2.14.0 --package 'numpy<2'``); it is skipped with a line when that runtime
does not exist. Results go to ``bench/results/openmp_knobs.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import stats
from tuner.errors import TunerError
from tuner.execution.outcome import OnReading, Outcome
from tuner.host import fingerprint, probe_host
from tuner.settings import get_settings
from tuner.space.search_space import build_space
from tuner.space.workload import unit_of
from tuner.spec.models import StudySpec
from tuner.study.interleave import Entry, paired, run_rounds
from tuner.study.measure import Measurer

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    label: str
    builtin: str
    params: dict[str, Any]
    probes: list[dict[str, Any]]
    python: str | None = None


TORCH_PROBES: list[dict[str, Any]] = [
    {"torch_threads": 1},
    {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"},
    {"allocator": "jemalloc"},
    {"allocator": "tcmalloc"},
    {"omp_runtime": "intel"},
    {"omp_runtime": "intel", "KMP_BLOCKTIME": 0},
    {"omp_runtime": "intel", "KMP_BLOCKTIME": 200},
]
TF_PROBES: list[dict[str, Any]] = [
    {"OMP_NUM_THREADS": 1},
    {"KMP_BLOCKTIME": 0},
    {"KMP_BLOCKTIME": 200},
    {"KMP_AFFINITY": "granularity=fine,compact,1,0"},
    {"allocator": "jemalloc"},
    {"allocator": "tcmalloc"},
]
CASES = [
    Case("torch_resnet infer", "torch_resnet", {"mode": "infer"}, TORCH_PROBES),
    Case("torch_transformer infer", "torch_transformer", {"mode": "infer"}, TORCH_PROBES),
    Case("resnet infer, TF 2.14 (Intel OpenMP build)", "resnet", {"mode": "infer"}, TF_PROBES,
         python="intel-tf"),
    Case("resnet infer, TF 2.21 (stock)", "resnet", {"mode": "infer"}, TF_PROBES),
]


#: The value that leaves a knob as the runtime has it, where it is not ``unset``.
AS_IS = {"allocator": "default", "omp_runtime": "gnu"}


def spec_for(case: Case) -> StudySpec:
    knobs: dict[str, Any] = {}
    for probe in case.probes:
        for name, value in probe.items():
            knobs.setdefault(name, {"choices": [AS_IS.get(name, "unset")]})["choices"].append(
                value)
    workload: dict[str, Any] = {"builtin": case.builtin,
                                "params": {"preset": "small", **case.params}}
    if case.python is not None:
        workload["python"] = case.python
    for entry in knobs.values():
        entry["choices"] = list(dict.fromkeys(entry["choices"]))
    return StudySpec.model_validate({"name": f"bench-{case.builtin}", "workload": workload,
                                     "knobs": knobs, "screening": "off",
                                     "pruner": {"name": "none", "stable_error": 0.0}})


def label_of(applied: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in applied.items()) or "defaults"


@dataclass
class LibraryRecorder(Measurer):
    """A measurer that also keeps, by configuration, the libraries its runs mapped."""

    mapped: dict[str, set[str]] = field(default_factory=dict)

    def run(self, applied: Mapping[str, Any], on_reading: OnReading | None = None) -> Outcome:
        outcome = super().run(applied, on_reading)
        self.mapped.setdefault(label_of(dict(applied)), set()).update(outcome.libraries or ())
        return outcome


def measure_case(case: Case, rounds: int) -> dict[str, Any]:
    space = build_space(spec_for(case), probe_host())
    measurer = LibraryRecorder(space, get_settings())
    entries = [Entry(label=label_of(p), applied=p) for p in [{}, *case.probes]]
    run_rounds(measurer, entries, rounds)
    reference = entries[0]
    rows = []
    for entry in entries:
        values = entry.ok_values()
        row: dict[str, Any] = {
            "config": entry.label, "values": entry.values,
            "median": statistics.median(values) if values else None,
            "libraries": sorted(measurer.mapped.get(entry.label, ())),
            "failures": sorted({r for r in entry.reasons if r})}
        a, b = paired(entry, reference)
        if entry is not reference and len(a) >= 2:
            row["speedup"] = stats.paired_speedup(a, b, floor=0.0).to_dict()
        rows.append(row)
    return {"case": case.label, "unit": unit_of(space.spec.workload), "rounds": rounds,
            "rows": rows}


def report(results: list[dict[str, Any]]) -> None:
    for result in results:
        print(f"\n{result['case']} ({result['rounds']} interleaved rounds, small preset)\n")
        print("| configuration | median | vs defaults (95% interval) | libraries mapped |")
        print("|---|---|---|---|")
        for row in result["rows"]:
            speedup = row.get("speedup")
            ratio = (f"{speedup['ratio']:.2f}x [{speedup['low']:.2f}, {speedup['high']:.2f}]"
                     if speedup else "-")
            median = f"{row['median']:.3g} {result['unit']}" if row["median"] else "failed"
            libs = ", ".join(row["libraries"]) or "none"
            print(f"| {row['config']} | {median} | {ratio} | {libs} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="labels of the cases to run")
    parser.add_argument("--out", default=str(HERE / "results" / "openmp_knobs.json"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        report(json.loads(Path(args.out).read_text())["results"])
        return 0
    started = time.monotonic()
    results = []
    for case in CASES:
        if args.only and case.label not in args.only:
            continue
        try:
            results.append(measure_case(case, args.rounds))
        except TunerError as exc:
            print(f"{case.label}: skipped: {exc}", file=sys.stderr)
            continue
        print(json.dumps({"case": case.label, "done": True}), file=sys.stderr, flush=True)
    report(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "results": results, "rounds": args.rounds, "seconds": time.monotonic() - started,
        "fingerprint": fingerprint(probe_host(), cache_dir=get_settings().cache_dir).to_dict(),
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
