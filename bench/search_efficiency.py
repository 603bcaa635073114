"""How fast does each search strategy get within 2% of the optimum, and what does it cost?

    python bench/search_efficiency.py [--seeds 20] [--surfaces bench/surfaces/*.json]

Every strategy runs tuner's own loop (``tuner.study.run.tune``: baselines with the noise runs,
the pruner, adaptive repeats) against recorded surfaces through ``ReplayBackend``, which
answers each run with a recorded sample of that configuration and charges the seconds the
real run took (start-up plus the intervals it got to before pruning). For each surface and
strategy, over ``--seeds`` seeds:

* trials to within 2%: the number of trials (baselines included) until one *completed*
  trial ran a configuration whose true mean (over all its recorded samples) is within 2% of
  the surface's best; median and 90th percentile (">budget" when fewer than 90% reach it);
* reached: the fraction of seeds that got there within the budget;
* bench-s: benchmark seconds spent until then (every run's start-up and measured time),
  median; "no pruning" is the same TPE with every trial measured in full, 3 runs each (the
  fixed-repeat policy a tuner needs at this noise), against tuner's default of the noise
  pruner, stable-measurement early stop, and 1-3 adaptive repeats.

``--startup-saving S`` replays every run with S seconds less start-up than recorded: the
surfaces hold fresh-process runs, and ``bench/trial_startup.py`` measures what the fork
launcher saves per run (the TensorFlow import and teardown). Its tables are a projection
from that measured saving, labelled as such.

Strategies: tuner's default TPE (multivariate, constant liar), TPE with independent
sampling, the default TPE with 4 parallel workers (where the constant liar matters), random
search, the grid in random order, and scrambled Sobol (QMC). Results also go to
``bench/results/search_efficiency.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tuner.host import Fingerprint
from tuner.settings import get_settings
from tuner.space.search_space import SearchSpace, build_space
from tuner.spec.models import StudySpec
from tuner.store import records
from tuner.store.database import live_trials
from tuner.study.opening import make_sampler
from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget
from tuner.testing.replay_studies import host_for, knob_entry
from tuner.testing.surfaces import ReplayBackend, Surface

HERE = Path(__file__).resolve().parent
STRATEGIES = ("tpe", "tpe-independent", "tpe-4-workers", "random", "grid", "qmc")
WITHIN = 0.02


@dataclass(frozen=True)
class Task:
    surface: str
    strategy: str
    seed: int
    pruning: bool
    budget: int
    startup_saving: float = 0.0


def study_for(surface: Surface, path: Path, task: Task) -> StudySpec:
    knobs = {axis: knob_entry(values) for axis, values in surface.axes.items()}
    adaptive = {"repeats": {"min": 1, "max": 3}, "pruner": {"name": "noise"}}
    fixed = {"repeats": 3, "pruner": {"name": "none", "stable_error": 0.0}}
    return StudySpec.model_validate({
        "name": f"{surface.name}-{task.strategy}-{task.seed}",
        "workload": {"builtin": "replay", "params": {"surface": str(path)}},
        "knobs": knobs, "objective": {"metric": surface.metric,
                                      "direction": "maximize" if surface.maximize
                                      else "minimize"},
        "budget": {"n_trials": task.budget}, "sampler": {"name": "tpe", "seed": task.seed},
        "noise": {"runs": 3}, "confirm": {"top": 0}, "screening": "off",
        "threads_within_binding": False, **(adaptive if task.pruning else fixed)})


def sampler_for(strategy: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if strategy in ("tpe", "tpe-4-workers"):
            return make_sampler(space)
        if strategy == "tpe-independent":
            default = make_sampler(space)
            assert isinstance(default, optuna.samplers.TPESampler)
            return optuna.samplers.TPESampler(seed=seed, multivariate=False,
                                              n_startup_trials=default._n_startup_trials)
        if strategy == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if strategy == "grid":
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        if strategy == "qmc":
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    raise ValueError(strategy)


_SURFACES: dict[str, Surface] = {}


def run_task(task: Task) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    path = Path(task.surface)
    surface = _SURFACES.get(task.surface) or Surface.load(path)
    _SURFACES[task.surface] = surface
    host = host_for(surface)
    spec = study_for(surface, path, task)
    space = build_space(spec, host)
    backend = ReplayBackend(surface, seed=task.seed, startup_saving=task.startup_saving)
    fp = Fingerprint(cpu_model="replay", sockets=1, physical_cores=1, logical_cpus=1,
                     numa_nodes=1, threads_per_core=1, kernel="", python="", tensorflow="",
                     onednn="", numactl="")
    collaborators = Collaborators(settings=get_settings(), backend=backend,
                                  sampler=sampler_for(task.strategy, space, task.seed))
    limits = RunLimits(confirm=False, jobs=4 if task.strategy == "tpe-4-workers" else 1)
    result = StudyRun(StudyTarget(space=space, storage_url="memory", fingerprint=fp),
                      collaborators=collaborators, limits=limits).run()
    _, best = surface.optimum()
    limit = best * (1 - WITHIN) if surface.maximize else best * (1 + WITHIN)
    seconds = 0.0
    reached: dict[str, Any] = {"trials_to": None, "seconds": None}
    for trial in sorted(live_trials(result.study), key=lambda t: t.number):
        runs = records.get(trial.user_attrs, "runs") or []
        seconds += sum(r["seconds"] for r in runs)
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        value = surface.true_value(records.get(trial.user_attrs, "applied"))
        good = value is not None and (value >= limit if surface.maximize else value <= limit)
        if good and reached["trials_to"] is None:
            reached = {"trials_to": trial.number + 1, "seconds": seconds}
    return {"surface": surface.name, "strategy": task.strategy, "seed": task.seed,
            "pruning": task.pruning, "budget": task.budget, **reached,
            "total_seconds": backend.seconds, "runs": backend.runs,
            "trials_run": len(live_trials(result.study))}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    budget = rows[0]["budget"]
    trials = [r["trials_to"] if r["trials_to"] is not None else math.inf for r in rows]
    seconds = [r["seconds"] if r["seconds"] is not None else math.inf for r in rows]
    return {"median_trials": statistics.median(trials), "p90_trials": percentile(trials, 0.9),
            "reached": sum(r["trials_to"] is not None for r in rows) / len(rows),
            "median_seconds": statistics.median(seconds), "budget": budget}


def fmt(value: float, budget: int | None = None) -> str:
    if math.isinf(value):
        return f">{budget}" if budget else "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--surfaces", nargs="*",
                        default=sorted(str(p) for p in (HERE / "surfaces").glob("*.json")))
    parser.add_argument("--strategies", nargs="*", default=list(STRATEGIES))
    parser.add_argument("--jobs", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--startup-saving", type=float, default=0.0,
                        help="seconds less start-up per run than recorded (fork launcher)")
    parser.add_argument("--out", default=str(HERE / "results" / "search_efficiency.json"))
    args = parser.parse_args(argv)

    tasks: list[Task] = []
    for path in args.surfaces:
        surface = Surface.load(path)
        size = math.prod(len(v) for v in surface.axes.values())
        budget = min(150, size + 2)
        for seed in range(args.seeds):
            for strategy in args.strategies:
                tasks.append(Task(path, strategy, seed, True, budget, args.startup_saving))
            if "tpe" in args.strategies:
                tasks.append(Task(path, "tpe", seed, False, budget, args.startup_saving))
    started = time.monotonic()
    with multiprocessing.Pool(args.jobs) as pool:
        rows = []
        for index, row in enumerate(pool.imap_unordered(run_task, tasks), start=1):
            rows.append(row)
            if index % 20 == 0:
                print(f"{index}/{len(tasks)} runs, {time.monotonic() - started:.0f} s",
                      file=sys.stderr, flush=True)
    if args.startup_saving:
        print(f"(projection: every run replayed with {args.startup_saving:g} s less start-up "
              "than recorded, the fork launcher's measured saving)")
    report(rows, args.out, started)
    return 0


def report(rows: list[dict[str, Any]], out: str, started: float) -> None:
    by_key: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["surface"], row["strategy"], row["pruning"]), []).append(row)
    surfaces = sorted({r["surface"] for r in rows})
    results: dict[str, Any] = {}
    for name in surfaces:
        surface_rows = {k: v for k, v in by_key.items() if k[0] == name}
        first = next(iter(surface_rows.values()))[0]
        print(f"\n{name} (budget {first['budget']} trials)")
        print("| strategy | median trials to 2% | p90 | reached | median bench-s to 2% |")
        print("|---|---|---|---|---|")
        results[name] = {}
        for (_, strategy, pruning), group in sorted(surface_rows.items(),
                                                     key=lambda kv: (not kv[0][2], kv[0][1])):
            s = summarize(group)
            label = strategy + ("" if pruning else " (no pruning, 3 full runs)")
            results[name][label] = s
            print(f"| {label} | {fmt(s['median_trials'], s['budget'])} | "
                  f"{fmt(s['p90_trials'], s['budget'])} | {s['reached']:.0%} | "
                  f"{fmt(s['median_seconds'])} |")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"results": results, "rows": rows,
                                     "seconds": time.monotonic() - started}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
