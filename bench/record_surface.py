"""Record a performance surface: every configuration of a study's knob grid, measured
``--samples`` times on this machine, plus both baselines, into a surface file.

    python bench/record_surface.py bench/surfaces/specs/resnet-small.yaml \
        --samples 3 --out bench/surfaces/resnet-small.json

Runs go in rounds: each round measures every configuration (and the baselines) once, in a
shuffled order, so slow drift of the machine spreads over all configurations instead of
landing on whichever ran during it. The file is written after every round; running the
same command again continues where it stopped. Each sample keeps its value, its interval
values, and its seconds (start-up to the first interval, and total), which is what the
replay needs to charge a pruned run its true cost.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tuner.execution.runner import Outcome
from tuner.host import fingerprint, probe_host
from tuner.settings import get_settings
from tuner.space import fit_to
from tuner.space.search_space import build_space
from tuner.space.workload import unit_of
from tuner.spec import load_file
from tuner.study.measure import Measurer
from tuner.testing.surfaces import Sample, Surface, config_key


def to_sample(outcome: Outcome, metric: str) -> Sample:
    times = outcome.reading_times
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    interval = statistics.median(gaps) if gaps else (
        (outcome.timing or {}).get("measure", 0.0) / max(1, len(times)))
    startup = max(0.0, times[0] - interval) if times else outcome.seconds
    return Sample(value=outcome.metrics[metric], intervals=outcome.intervals[metric],
                  startup=round(startup, 3), seconds=round(outcome.seconds, 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="study file whose knobs are the grid")
    parser.add_argument("--study", help="study name (default: the first)")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    host = probe_host()
    loaded = load_file(args.spec, fit=fit_to(host))
    spec = next((s for s in loaded.studies if s.name == args.study), loaded.studies[0])
    spec = spec.model_copy(update={"pruner": spec.pruner.model_copy(
        update={"name": "none", "stable_error": 0.0})})
    space = build_space(spec, host)
    grid = space.grid()
    names = list(grid)
    out = Path(args.out)
    surface = Surface.load(out) if out.exists() else Surface(
        name=spec.name, description=spec.description, synthetic=False,
        unit=unit_of(spec.workload),
        maximize=spec.objective.direction == "maximize", axes=grid,
        metric=spec.objective.metric,
        fingerprint=fingerprint(host, cache_dir=get_settings().cache_dir).to_dict(),
        meta={"workload": spec.workload.model_dump(mode="json"), "recorded_by": __file__})
    measurer = Measurer(space, get_settings())
    configs: list[dict[str, Any]] = [dict(zip(names, values, strict=True))
                                     for values in _product(grid)]
    for baseline in space.baselines:
        surface.baselines.setdefault(baseline.name, {"applied": {**baseline.values,
                                                                 **space.fixed},
                                                     "samples": []})
    rng = random.Random(args.seed)
    started = time.monotonic()
    while True:
        done = min([len(surface.configs.get(config_key(c), [])) for c in configs]
                   + [len(b["samples"]) for b in surface.baselines.values()])
        if done >= args.samples:
            break
        jobs: list[tuple[str, dict[str, Any]]] = [("grid", c) for c in configs
                                                  if len(surface.configs.get(config_key(c), []))
                                                  <= done]
        jobs += [(role, b["applied"]) for role, b in surface.baselines.items()
                 if len(b["samples"]) <= done]
        rng.shuffle(jobs)
        for index, (kind, applied) in enumerate(jobs, start=1):
            values = {**applied, **space.fixed} if kind == "grid" else applied
            outcome = measurer.run(values)
            label = kind if kind != "grid" else json.dumps(applied)
            if not outcome.ok:
                print(f"round {done + 1}: {label}: {outcome.reason}", file=sys.stderr)
                continue
            sample = to_sample(outcome, measurer.metric)
            if kind == "grid":
                surface.configs.setdefault(config_key(applied), []).append(sample)
            else:
                surface.baselines[kind]["samples"].append(sample.to_dict())
            print(f"round {done + 1} [{index}/{len(jobs)}] {label}: {sample.value:.4g} "
                  f"(start-up {sample.startup:.1f} s, total {sample.seconds:.1f} s; "
                  f"{(time.monotonic() - started) / 60:.1f} min so far)", flush=True)
        surface.interval_seconds = round(statistics.median(
            [(s.seconds - s.startup) / max(1, len(s.intervals))
             for samples in surface.configs.values() for s in samples]), 3)
        surface.save(out)
    optimum, value = surface.optimum()
    print(f"{surface.name}: {len(surface.configs)} configurations x {args.samples} samples; "
          f"optimum {optimum} = {value:.4g} {surface.unit}; "
          f"{len(surface.within(0.02))} within 2%")
    return 0


def _product(grid: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    from itertools import product

    return list(product(*grid.values()))


if __name__ == "__main__":
    sys.exit(main())
