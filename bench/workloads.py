"""Each built-in workload's throughput at TensorFlow's defaults and at the vendor's
recommended settings, on this machine, plus the WaveNet proxy's bound.

    python bench/workloads.py [--rounds 3] [--presets small full] [--full-seconds 20]

For every workload and preset, the two baselines run in ``--rounds`` interleaved rounds
(defaults, vendor, defaults, vendor, ...), through tuner's own launcher (knobs applied as a
trial would apply them). The table quotes medians and the vendor/defaults speedup with its
95% interval from the paired rounds. Full presets keep the reference model sizes but time
``--full-seconds`` of measurement (and 2 warm-up steps) instead of the preset's minute and
warm-up, to fit the benchmark in reasonable time on 2 cores. The proxy measures the memory
and cache bandwidth here; WaveNet is compared with the bound that bandwidth puts on its own
weights per sample (bytes per sample from its SETTINGS line).

Results go to ``bench/results/workloads.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tuner import stats
from tuner.execution.runner import RunRequest, run
from tuner.host import fingerprint, probe_host
from tuner.settings import child_base_environment, get_settings
from tuner.space.search_space import build_space
from tuner.space.workload import unit_of
from tuner.spec.models import StudySpec
from tuner.study.interleave import Entry, paired, run_rounds
from tuner.study.measure import Measurer

HERE = Path(__file__).resolve().parent
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("resnet infer", "resnet", {"mode": "infer"}),
    ("resnet train", "resnet", {"mode": "train"}),
    ("wavenet", "wavenet", {}),
    ("parallel_wavenet", "parallel_wavenet", {"mode": "generate"}),
    ("parallel_wavenet distill", "parallel_wavenet", {"mode": "distill"}),
    ("gnmt", "gnmt", {}),
    ("proxy numpy", "proxy", {"backend": "numpy"}),
    ("proxy tensorflow", "proxy", {"backend": "tensorflow"}),
    ("torch_resnet infer", "torch_resnet", {"mode": "infer"}),
    ("torch_resnet train", "torch_resnet", {"mode": "train"}),
    ("torch_transformer infer", "torch_transformer", {"mode": "infer"}),
    ("resnet infer, TF 2.14 Intel build", "resnet", {"mode": "infer", "python": "intel-tf"}),
]


def spec_for(builtin: str, params: dict[str, Any], preset: str,
             full_seconds: float) -> StudySpec:
    merged = {"preset": preset, **params}
    # "python" names the runtime the built-in runs in, not one of its parameters
    python = merged.pop("python", None)
    if preset == "full":
        merged["seconds"] = full_seconds
        merged["warmup_steps"] = 2
    workload: dict[str, Any] = {"builtin": builtin, "params": merged}
    if python is not None:
        workload["python"] = python
    return StudySpec.model_validate({
        "name": f"bench-{builtin}", "workload": workload,
        "pruner": {"name": "none", "stable_error": 0.0}})


def measure_case(label: str, builtin: str, params: dict[str, Any], preset: str,
                 rounds: int, full_seconds: float) -> dict[str, Any]:
    host = probe_host()
    space = build_space(spec_for(builtin, params, preset, full_seconds), host)
    measurer = Measurer(space, get_settings())
    entries = [Entry(label=b.name, applied={**b.values, **space.fixed})
               for b in space.baselines]
    run_rounds(measurer, entries, rounds)
    defaults, vendor = entries
    row: dict[str, Any] = {"workload": label, "preset": preset,
                           "unit": unit_of(space.spec.workload)}
    for entry in entries:
        values = entry.ok_values()
        row[entry.label] = statistics.median(values) if values else None
        row[f"{entry.label}_values"] = entry.values
        row[f"{entry.label}_failures"] = [r for r in entry.reasons if r]
    a, b = paired(vendor, defaults)
    if len(a) >= 2:
        row["vendor_speedup"] = stats.paired_speedup(a, b, floor=0.0).to_dict()
    return row


def wavenet_weights(preset: str) -> float:
    """Weight bytes a fast-generation sample of WaveNet touches, from its SETTINGS line."""
    host = probe_host()
    space = build_space(spec_for("wavenet", {"seconds": 0.2, "intervals": 1,
                                             "warmup_steps": 1}, preset, 0.2), host)
    outcome = run(RunRequest(launch=space.launch({}), metric="throughput", timeout=600,
                             base_env=child_base_environment(space.controlled_env)))
    return float((outcome.reported or {}).get("weight_bytes_per_sample", 0.0))


def proxy_bandwidth(tail: str) -> dict[str, float]:
    for line in tail.splitlines():
        if line.startswith("PROXY "):
            return {k: float(v) for k, v in (p.split("=", 1) for p in line.split()[1:])
                    if v.replace(".", "", 1).replace("e+", "", 1).isdigit()}
    return {}


def proxy_line(preset: str) -> dict[str, float]:
    host = probe_host()
    space = build_space(spec_for("proxy", {"backend": "numpy"}, preset, 5.0), host)
    outcome = run(RunRequest(launch=space.launch({}), metric="throughput", timeout=600,
                             base_env=child_base_environment(space.controlled_env)))
    return proxy_bandwidth(outcome.tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full-rounds", type=int, default=2)
    parser.add_argument("--presets", nargs="*", default=["small", "full"])
    parser.add_argument("--full-seconds", type=float, default=20.0)
    parser.add_argument("--only", nargs="*", help="labels of the cases to run")
    parser.add_argument("--out", default=str(HERE / "results" / "workloads.json"))
    parser.add_argument("--report-only", action="store_true",
                        help="print the tables of the results file again (units as labelled "
                             "now), measuring nothing")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads(Path(args.out).read_text())
        for row in saved["rows"]:
            _, builtin, params = next(c for c in CASES if c[0] == row["workload"])
            row["unit"] = unit_of(spec_for(builtin, params, row["preset"], 1.0).workload)
        report(saved["rows"], saved["bounds"])
        return 0
    started = time.monotonic()
    rows = []
    for preset in args.presets:
        for label, builtin, params in CASES:
            if args.only and label not in args.only:
                continue
            rounds = args.full_rounds if preset == "full" else args.rounds
            row = measure_case(label, builtin, params, preset, rounds, args.full_seconds)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("_values")}),
                  file=sys.stderr, flush=True)
    bounds = {}
    for preset in args.presets:
        bandwidth = proxy_line(preset)
        weights = wavenet_weights(preset)
        level = "cache" if weights <= 32 * 2**20 else "dram"
        per_s = bandwidth.get(f"{level}_bytes_per_s", 0.0)
        bounds[preset] = {"wavenet_weight_bytes_per_sample": weights, "level": level,
                          "bandwidth_bytes_per_s": per_s,
                          "bound_samples_per_s": per_s / weights if weights else None,
                          "proxy": bandwidth}
    report(rows, bounds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "bounds": bounds,
                               "fingerprint": fingerprint(probe_host(),
                                                          cache_dir=get_settings().cache_dir
                                                          ).to_dict(),
                               "rounds": args.rounds, "full_seconds": args.full_seconds,
                               "seconds": time.monotonic() - started}, indent=1) + "\n")
    return 0


def report(rows: list[dict[str, Any]], bounds: dict[str, Any]) -> None:
    print("| workload | preset | defaults | vendor | vendor / defaults (95% interval) |")
    print("|---|---|---|---|---|")
    for row in rows:
        speedup = row.get("vendor_speedup")
        ratio = (f"{speedup['ratio']:.2f}x [{speedup['low']:.2f}, {speedup['high']:.2f}]"
                 if speedup else "-")
        print(f"| {row['workload']} | {row['preset']} | {_fmt(row['defaults'])} "
              f"{row['unit']} | {_fmt(row['vendor'])} {row['unit']} | {ratio} |")
    wavenet = {r["preset"]: r for r in rows if r["workload"] == "wavenet"}
    parallel = {r["preset"]: r for r in rows if r["workload"] == "parallel_wavenet"}
    for preset, bound in bounds.items():
        limit = bound["bound_samples_per_s"]
        best = max(filter(None, (wavenet.get(preset, {}).get(k) for k in
                                 ("defaults", "vendor"))), default=None)
        line = (f"{preset}: WaveNet touches {bound['wavenet_weight_bytes_per_sample'] / 1e6:.2f}"
                f" MB of weights per sample; at the {bound['level']} bandwidth measured here "
                f"({bound['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s) the bound is "
                f"{_fmt(limit)} samples/s")
        if best and limit:
            line += f"; WaveNet reaches {best / limit:.1%} of it"
        par = max(filter(None, (parallel.get(preset, {}).get(k) for k in
                                ("defaults", "vendor"))), default=None)
        if best and par:
            line += f"; Parallel WaveNet generates {par / best:.0f}x WaveNet's samples/s"
        print(line)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


if __name__ == "__main__":
    sys.exit(main())
