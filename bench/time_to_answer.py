"""Time to a confirmed answer: the whole pipeline, charged in benchmark-seconds.

    python bench/time_to_answer.py [--seeds 200] [--surfaces ...] [--strategies ...]

Every strategy runs tuner's whole pipeline (``tuner.study.run.StudyRun``: the defaults
``noise.runs`` times for the noise floor, the vendor baseline, the search with its pruner
and adaptive repeats, the sequential confirmation of the top candidates against both
baselines) on a recorded or synthetic surface through ``ReplayBackend``, which answers each
run with a recorded sample of that configuration and charges the seconds the real run took
(start-up plus the intervals it got to before it was pruned or stopped). Per surface,
strategy and seed it records:

* seconds: the benchmark-seconds from start to the confirmed answer (every run charged);
* correct: the answer (the confirmation's recommendation, a baseline included) has a true
  mean (over all of its recorded samples) within 2% of the surface's optimum;
* false win: the answer claims a measured win over a baseline whose true mean is in fact at
  least as good (a speedup that is not real);
* to answer: the seconds when the answer is correct, infinite otherwise; its median is the
  table's "s to a correct answer" (">" when fewer than half the seeds are correct).

Strategies: ``tpe`` (tuner's default), ``gp`` (Optuna's GPSampler), ``cmaes``, ``hebo``
(``bench/hebo_sampler.py``, in a venv of its own), ``random``, ``grid`` (in random order),
each with tuner's pruning and adaptive repeats;
``tpe-halving`` (successive halving across trials instead of the noise pruner);
``tpe-no-pruning`` (3 full runs per trial); and ``concertio``, the fixed-repeat practice of
commercial tuners (Concertio's Optimizer Studio): 3 full runs per trial, no pruning, no
confirmation, the answer being the best mean of the search. The budget per surface is the
valid space plus the two baselines, up to ``--max-budget`` trials.

Results go to ``bench/results/time_to_answer.{json,txt}``.
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
from optuna.trial import TrialState

from tuner.store.attributes import APPLIED, CONFIRMATION, ROLE
from tuner.testing.replay_studies import ReplayOptions, host_for, replay_spec, run_replay
from tuner.testing.surfaces import Surface

HERE = Path(__file__).resolve().parent
STRATEGIES = ("tpe", "gp", "cmaes", "hebo", "random", "grid", "tpe-halving",
              "tpe-no-pruning", "concertio")
#: Run by default: HEBO needs a venv of its own (bench/hebo_sampler.py), run it with
#: ``--strategies hebo --merge`` from there.
DEFAULT_STRATEGIES = tuple(s for s in STRATEGIES if s != "hebo")
WITHIN = 0.02


@dataclass(frozen=True)
class Task:
    surface: str
    strategy: str
    seed: int
    budget: int
    #: The confirmation's section beyond ``top`` (``--confirm KEY=VALUE``).
    confirm: tuple[tuple[str, Any], ...] = ()


def spec_overrides(task: Task) -> dict[str, Any]:
    sampler = {"tpe-no-pruning": "tpe", "concertio": "tpe", "tpe-halving": "tpe",
               "hebo": "tpe"}.get(task.strategy, task.strategy)
    overrides: dict[str, Any] = {
        "budget": {"n_trials": task.budget}, "sampler": {"name": sampler, "seed": task.seed},
        "confirm": {"top": 3, **dict(task.confirm)}}
    if task.strategy in ("tpe-no-pruning", "concertio"):
        overrides.update(repeats=3, pruner={"name": "none", "stable_error": 0.0})
    else:
        pruner = "successive_halving" if task.strategy == "tpe-halving" else "noise"
        overrides.update(repeats={"min": 1, "max": 3}, pruner={"name": pruner})
    if task.strategy == "concertio":
        overrides["confirm"] = {"top": 0}
    return overrides


_SURFACES: dict[str, Surface] = {}


def answer_of(study: optuna.Study) -> tuple[dict[str, Any] | None, list[str]]:
    """The applied settings of the study's answer, and the baselines it claims a win over.
    With a confirmation: its recommendation; without: the best completed trial."""
    confirmation = CONFIRMATION.get(study)
    if confirmation is not None and confirmation.winner is not None:
        winner = confirmation.winner
        wins = [role for role, s in (winner.get("speedups") or {}).items()
                if s.get("verdict") == "win"]
        return dict(winner.get("applied") or {}), wins
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None]
    if not complete:
        return None, []
    best = (max if study.direction.name == "MAXIMIZE" else min)(
        complete, key=lambda t: float(t.value or 0.0))
    # a fixed-repeat tuner reports the best mean as a gain over the defaults
    defaults = next((t for t in complete if ROLE.get(t) == "defaults"), None)
    better = defaults is not None and best.number != defaults.number
    return dict(APPLIED.get(best) or {}), ["defaults"] if better else []


def run_task(task: Task) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    path = Path(task.surface)
    surface = _SURFACES.get(task.surface) or Surface.load(path)
    _SURFACES[task.surface] = surface
    spec = replay_spec(surface, path, name=f"{surface.name}-{task.strategy}-{task.seed}",
                       **spec_overrides(task))
    host = host_for(surface)
    custom = None
    if task.strategy == "hebo":  # in a venv of its own: see bench/hebo_sampler.py
        from hebo_sampler import HEBOSampler

        from tuner.space.search_space import build_space
        from tuner.study.samplers import startup_trials

        custom = HEBOSampler(seed=task.seed,
                             n_startup_trials=startup_trials(build_space(spec, host)))
    started = time.process_time()
    replayed = run_replay(surface, spec, host,
                          ReplayOptions(seed=task.seed, sampler=custom,
                                        confirm=task.strategy != "concertio"))
    cpu = time.process_time() - started
    applied, wins = answer_of(replayed.study)
    _, best = surface.optimum()
    goal = surface.goal
    value = surface.true_value(applied) if applied is not None else None
    correct = value is not None and goal.at_least_as_good(value, goal.bound(best, WITHIN))
    false_win = False
    for role in wins:
        base = next((t for t in replayed.study.get_trials(deepcopy=False)
                     if ROLE.get(t) == role), None)
        base_value = surface.true_value(APPLIED.get(base) or {}) if base else None
        if value is not None and base_value is not None and not goal.better(value, base_value):
            false_win = True
    # to the millisecond, as stored: a table made again from the stored rows is the same
    seconds = round(replayed.backend.seconds, 3)
    return {"surface": surface.name, "strategy": task.strategy, "seed": task.seed,
            "budget": task.budget, "seconds": seconds, "correct": correct,
            "false_win": false_win, "to_answer": seconds if correct else None,
            "runs": replayed.backend.runs, "cpu_seconds": round(cpu, 3)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    to_answer = [r["to_answer"] if r["to_answer"] is not None else math.inf for r in rows]
    return {"median_to_answer": statistics.median(to_answer),
            "correct": sum(r["correct"] for r in rows) / len(rows),
            "false_win": sum(r["false_win"] for r in rows) / len(rows),
            "median_seconds": statistics.median(r["seconds"] for r in rows),
            "median_runs": statistics.median(r["runs"] for r in rows),
            "cpu_per_study": statistics.median(r["cpu_seconds"] for r in rows),
            "seeds": len(rows), "budget": rows[0]["budget"]}


def fmt(value: float) -> str:
    return ">" if math.isinf(value) else f"{value:.0f}"


def results_json(results: dict[str, Any], rows: list[dict[str, Any]], elapsed: float) -> str:
    """The summaries indented, then the rows (one per surface, strategy and seed: about ten
    thousand) one per line as lists of ``row_fields`` (``run_task``'s keys): under 1 MB
    where a mapping per row, indented, took 2.5 MB."""
    fields = list(rows[0]) if rows else []

    return "\n".join([
        "{", f' "results": {json.dumps(results, indent=1)},',
        f' "seconds": {round(elapsed, 1)},', f' "row_fields": {json.dumps(fields)},',
        ' "rows": [', ",\n".join(json.dumps([row[k] for k in fields]) for row in rows),
        " ]", "}", ""])


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an earlier ``results_json`` (or of one written before rows were lists)."""
    data = json.loads(path.read_text())
    fields = data.get("row_fields")
    if not fields:
        return list(data["rows"])
    return [dict(zip(fields, row, strict=True)) for row in data["rows"]]


def report(rows: list[dict[str, Any]], out: Path, elapsed: float) -> str:
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["surface"], row["strategy"]), []).append(row)
    lines: list[str] = []
    results: dict[str, Any] = {}
    for name in sorted({r["surface"] for r in rows}):
        group = {s: v for (n, s), v in by_key.items() if n == name}
        first = next(iter(group.values()))[0]
        seeds = max(len(v) for v in group.values())  # a strategy run with fewer says so
        lines += ["", f"{name} (budget {first['budget']} trials, {seeds} seeds)",
                  "| strategy | s to a correct answer (median) | correct | false wins | "
                  "bench-s spent (median) | runs | tuner CPU-s per study |",
                  "|---|---|---|---|---|---|---|"]
        results[name] = {}
        order = [s for s in STRATEGIES if s in group]
        for strategy in order:
            s = summarize(group[strategy])
            results[name][strategy] = s
            label = strategy if s["seeds"] == seeds else f"{strategy} ({s['seeds']} seeds)"
            lines.append(f"| {label} | {fmt(s['median_to_answer'])} | {s['correct']:.0%} | "
                         f"{s['false_win']:.0%} | {fmt(s['median_seconds'])} | "
                         f"{s['median_runs']:.0f} | {s['cpu_per_study']:.1f} |")
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(results_json(results, rows, elapsed))
    out.with_suffix(".txt").write_text(text.lstrip() + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--surfaces", nargs="*",
                        default=sorted(str(p) for p in (HERE / "surfaces").glob("*.json")))
    parser.add_argument("--strategies", nargs="*", default=list(DEFAULT_STRATEGIES),
                        choices=STRATEGIES)
    parser.add_argument("--max-budget", type=int, default=60)
    parser.add_argument("--confirm", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the confirmation's settings for every strategy that confirms "
                             "(top=6, max_rounds=24, precision=0.01; default top=3)")
    parser.add_argument("--jobs", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--out", type=Path, default=HERE / "results" / "time_to_answer")
    parser.add_argument("--merge", action="store_true",
                        help="keep the last results' rows of the (surface, strategy) "
                        "pairs not run now")
    args = parser.parse_args(argv)
    confirm = tuple((key, json.loads(value)) for key, value in
                    (item.split("=", 1) for item in args.confirm))
    tasks = []
    for path in args.surfaces:
        surface = Surface.load(path)
        size = math.prod(len(v) for v in surface.axes.values())
        budget = min(args.max_budget, size + 2)
        tasks += [Task(path, strategy, seed, budget, confirm)
                  for seed in range(args.seeds) for strategy in args.strategies]
    started = time.monotonic()
    rows = []
    with multiprocessing.Pool(args.jobs) as pool:
        for index, row in enumerate(pool.imap_unordered(run_task, tasks), start=1):
            rows.append(row)
            if index % 20 == 0:
                print(f"{index}/{len(tasks)} studies, {time.monotonic() - started:.0f} s",
                      file=sys.stderr, flush=True)
    if args.merge and args.out.with_suffix(".json").exists():
        earlier = load_rows(args.out.with_suffix(".json"))
        rerun = {(r["surface"], r["strategy"]) for r in rows}
        rows += [r for r in earlier if (r["surface"], r["strategy"]) not in rerun]
    print(report(rows, args.out, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
