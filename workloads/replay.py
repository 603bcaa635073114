"""Replay a recorded performance surface as if it were the workload.

The program works out which configuration it was launched with from what it can observe,
as a real workload would: thread pools and batch size from its flags, OpenMP/KMP and other
variables from its environment, ``physcpubind`` from the number of CPUs it may run on. It
then draws one of that configuration's recorded runs (seeded) and prints it under the
workload contract: SETTINGS, a METRIC line per recorded interval (sleeping
``--time-scale`` x the recorded interval length before each, 0 by default), FINAL. On a
modelled (synthetic) surface it draws from the example runs stored beside the model; the
benchmarks' in-process replay (``tuner.testing.surfaces.ReplayBackend``) draws fresh runs
from the model itself.

A configuration the surface does not hold exits with status 3 and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from workloads import _common

FLAG_KNOBS = ("inter_op", "intra_op", "batch_size")


def build_arg_parser() -> argparse.ArgumentParser:
    """The built-in workloads' flags (the sizes and timing ones mean nothing to a replay),
    plus the surface; ``--seed`` seeds the draw, a fresh one per run by default."""
    parser = _common.base_parser(prog="python -m workloads.replay", description=__doc__,
                                 presets={"small": {}, "full": {}})
    parser.add_argument("--surface", required=True, help="surface JSON file")
    parser.add_argument("--time-scale", type=float, default=0.0,
                        help="sleep this fraction of each recorded interval (0: instant)")
    parser.set_defaults(seed=None)
    return parser


def observed(args: argparse.Namespace, axes: Sequence[str]) -> dict[str, Any]:
    """The knob values this process can see, for the knobs the surface varies."""
    values: dict[str, Any] = {}
    for name in axes:
        if name in FLAG_KNOBS:
            value = getattr(args, name)
            if value:
                values[name] = value
        elif name == "physcpubind":
            values[name] = len(os.sched_getaffinity(0))
        elif name in os.environ:
            text = os.environ[name]
            values[name] = int(text) if text.lstrip("-").isdigit() else text
    return values


def find(surface: dict[str, Any], seen: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Samples of the configuration ``seen`` stands for: a grid point, or a baseline whose
    observable settings match."""
    axes = list(surface["axes"])
    if all(a in seen for a in axes):
        for config in surface["configs"]:
            if all(config["knobs"][a] == seen[a] for a in axes):
                return list(config["samples"])
    for entry in surface.get("baselines", {}).values():
        applied = entry["applied"]
        visible = {k: v for k, v in applied.items() if k in axes}
        if all(str(seen.get(k)) == str(v) for k, v in visible.items()) and not (
                set(seen) - set(visible) - {"physcpubind"}):
            return list(entry["samples"])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    with open(args.surface, encoding="utf-8") as handle:
        surface = json.load(handle)
    seen = observed(args, list(surface["axes"]))
    metric, unit = surface.get("metric", "throughput"), surface.get("unit", "")
    print("SETTINGS " + json.dumps({"workload": "replay", "surface": surface["name"],
                                    "observed": seen,
                                    "affinity": sorted(os.sched_getaffinity(0)),
                                    "env": {k: v for k, v in os.environ.items()
                                            if k.startswith(("OMP_", "KMP_", "TF_"))}},
                                   sort_keys=True), flush=True)
    samples = find(surface, seen)
    if not samples:
        print(f"replay: the surface {surface['name']} holds no configuration {seen}",
              file=sys.stderr)
        return 3
    sample = random.Random(args.seed).choice(samples)
    for index, value in enumerate(sample["intervals"], start=1):
        time.sleep(args.time_scale * surface.get("interval_seconds", 1.0))
        print(f"METRIC {metric}={value:.6g} unit={unit} interval={index}", flush=True)
    print(f"FINAL {metric}={sample['value']:.6g} unit={unit}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
