"""What tuner itself adds to every trial, beyond the workload's own process.

    python bench/overhead.py [--trials 60 500] [--repeats 3]
        [--postgres postgresql://postgres@127.0.0.1/tuner_bench]

* loop: a whole study of ``--trials`` trials through ``tuner.study.run.tune`` with an instant
  backend (each run answers at once with 3 intervals and a value): the sampler's ask, the
  trial's attributes and intermediate values written to the study database, the pruner's
  checks, adaptive repeats, tell. Seconds per trial, on SQLite (a file, WAL) and on
  PostgreSQL. Sampling alone (TPE's ask on a study of that size) is timed separately.
* launch: ``tuner.execution.runner.run`` of a program that prints its METRIC/FINAL lines and exits,
  against ``subprocess.run`` of the same program: the cost of streaming, parsing and
  process-group handling (interpreter start-up is the workload's, not tuner's).
* parse: the protocol parser's time for a typical run's output (40 lines).

The share is against a typical small-preset run: the median of the runs recorded (as fresh
processes) in ``bench/surfaces/*-small.json``, and the median of the runs of ResNet's small
preset through the fork launcher, measured here (tuner's default for built-ins).

Timings on a VM vary 5-20% from one run to the next, so every figure is the median of
``--repeats`` measurements taken in turn (forked runs, the SQLite loop, the PostgreSQL loop,
then again), never one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna

from tuner.execution.launch import Launch
from tuner.execution.parsers import ProtocolParser
from tuner.execution.runner import RunRequest, run
from tuner.host import Fingerprint, probe_host
from tuner.settings import get_settings
from tuner.space.search_space import build_space
from tuner.spec.models import StudySpec
from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget
from tuner.testing.fakes import InstantBackend
from tuner.testing.surfaces import Surface

HERE = Path(__file__).resolve().parent
PROGRAM = ("import sys\nfor i in range(1, 4):\n    print(f'METRIC throughput={100 + i} unit=x/s "
           "interval={i}')\nprint('FINAL throughput=102 unit=x/s')\n")


def loop_seconds(storage: str, trials: int) -> tuple[float, float]:
    """Seconds per trial of a whole study, and of TPE's ask alone at that study size."""
    spec = StudySpec.model_validate({
        "name": f"overhead-{time.time_ns()}", "workload": {"builtin": "resnet"},
        "knobs": {"intra_op": "auto", "inter_op": {"low": 1, "high": 16},
                  "KMP_BLOCKTIME": [0, 1, 200],
                  "batch_size": [2, 4, 8, 16, 32, 64, 128, 256]},
        "budget": {"n_trials": trials}, "screening": "off", "confirm": {"top": 0},
        "noise": {"runs": 3}})
    space = build_space(spec, probe_host())
    fp = Fingerprint(cpu_model="bench", sockets=1, physical_cores=1, logical_cpus=1,
                     numa_nodes=1, threads_per_core=1, kernel="", python="", tensorflow="",
                     onednn="", numactl="")
    started = time.perf_counter()
    result = StudyRun(StudyTarget(space=space, storage_url=storage, fingerprint=fp),
                      collaborators=Collaborators(settings=get_settings(),
                                                  backend=InstantBackend()),
                      limits=RunLimits(confirm=False)).run()
    per_trial = (time.perf_counter() - started) / len(result.study.trials)
    asks = []
    for _ in range(5):
        tick = time.perf_counter()
        trial = result.study.ask()
        space.suggest(trial)
        asks.append(time.perf_counter() - tick)
        result.study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return per_trial, statistics.median(asks)


def launch_seconds(rounds: int = 15) -> float:
    """runner.run's cost above a bare subprocess.run of the same program."""
    argv = [sys.executable, "-c", PROGRAM]
    bare, ours = [], []
    for _ in range(rounds):
        tick = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        bare.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        outcome = run(RunRequest(launch=Launch(argv=tuple(argv)), metric="throughput",
                                 timeout=30, base_env={"PATH": "/usr/bin:/bin"}))
        ours.append(time.perf_counter() - tick)
        assert outcome.ok, outcome.reason
    return max(0.0, statistics.median(ours) - statistics.median(bare))


def parse_seconds() -> float:
    lines = ["SETTINGS {\"inter_op\": 1, \"intra_op\": 2}"] + [
        f"METRIC throughput={100 + i}.5 unit=images/s interval={i} items=8 seconds=1.0"
        for i in range(1, 37)] + ["FINAL throughput=101 unit=images/s", "total images/sec: 1"]
    tick = time.perf_counter()
    for _ in range(200):
        parser = ProtocolParser()
        for line in lines:
            parser.feed(line)
        parser.result()
    return (time.perf_counter() - tick) / 200


def forked_trial_seconds(runs: int = 3) -> float:
    from tuner.execution.forkserver import ForkServerBackend
    from tuner.study.measure import Measurer

    spec = StudySpec.model_validate({"name": "overhead-forked",
                                     "workload": {"builtin": "resnet"},
                                     "pruner": {"name": "none", "stable_error": 0.0}})
    backend = ForkServerBackend()
    try:
        measurer = Measurer(build_space(spec, probe_host()), get_settings(), backend)
        measurer.run({})  # the server starts once per study, not per trial
        return statistics.median(measurer.run({}).seconds for _ in range(runs))
    finally:
        backend.close()


def typical_trial_seconds() -> tuple[float, str]:
    totals = [s.seconds for path in (HERE / "surfaces").glob("*-small.json")
              for samples in Surface.load(path).configs.values() for s in samples]
    if totals:
        return statistics.median(totals), "median run of the recorded small-preset surfaces"
    return 9.0, "assumed (no recorded surface)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[60, 500],
                        help="study sizes to time the loop at")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/tuner_bench")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measurements of each figure, taken in turn; the median is shown")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    trial, where = typical_trial_seconds()
    launch = launch_seconds()
    parse = parse_seconds()
    postgres: str | None = args.postgres
    try:
        ensure_database(args.postgres)
    except Exception as exc:  # the benchmark reports an unreachable server and goes on
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        postgres = None
    measured = {trials: Loops() for trials in args.trials}
    forked: list[float] = []
    for _ in range(args.repeats):
        for trials, loops in measured.items():
            loops.measure(trials, postgres)
        forked.append(forked_trial_seconds())
    fork = statistics.median(forked)
    print(f"typical small-preset run: {trial:.2f} s fresh ({where}); {fork:.2f} s forked "
          f"(ResNet small, fork launcher, median of {args.repeats} x 3 runs, measured in this "
          f"run between the loops); every figure the median of {args.repeats} taken in turn")
    for trials, loops in measured.items():
        print(f"\nstudy of {trials} trials")
        table(trials, loops, trial=trial, forked=fork, fixed=(launch, parse))
    return 0


class Loops:
    """The loop's seconds per trial on each storage and TPE's ask, one entry per repeat."""

    def __init__(self) -> None:
        self.sqlite: list[float] = []
        self.ask: list[float] = []
        self.postgres: list[float] = []

    def measure(self, trials: int, postgres: str | None) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            loop, ask = in_child(f"sqlite:///{tmp}/overhead.db", trials)
        self.sqlite.append(loop)
        self.ask.append(ask)
        if postgres is not None:
            self.postgres.append(in_child(postgres, trials)[0])


def in_child(storage: str, trials: int) -> tuple[float, float]:
    """``loop_seconds`` in a process of its own, as each ``tuner tune`` is: loops timed one
    after another in one process slowed by up to 30% as the earlier studies' objects
    accumulated (more for the garbage collector to walk), which is the benchmark's cost,
    not tuner's."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(loop_seconds, (storage, trials))


def table(trials: int, loops: Loops, *, trial: float, forked: float,
          fixed: tuple[float, float]) -> None:
    launch, parse = fixed
    sqlite_loop = statistics.median(loops.sqlite)
    rows: list[tuple[str, float]] = [
        (f"sampling (TPE ask + suggest, at {trials} trials)", statistics.median(loops.ask)),
        ("loop per trial on SQLite (sampling, storage, pruner, tell)", sqlite_loop)]
    postgres_loop = statistics.median(loops.postgres) if loops.postgres else None
    if postgres_loop is not None:
        rows.append(("loop per trial on PostgreSQL", postgres_loop))
    rows += [("launch, stream and stop (runner above subprocess.run)", launch),
             ("parse one run's output (40 lines)", parse)]
    print("| part | seconds per trial | share of a fresh run | share of a forked run |")
    print("|---|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1000:.1f} ms | {seconds / trial:.2%} | "
              f"{seconds / forked:.2%} |")
    for name, loop in (("SQLite", sqlite_loop), ("PostgreSQL", postgres_loop)):
        if loop is not None:
            total = loop + launch + parse
            print(f"| **total on {name}** | **{total * 1000:.1f} ms** | **{total / trial:.2%}** "
                  f"| **{total / forked:.2%}** |")


def ensure_database(url: str) -> None:
    import sqlalchemy

    base, name = url.rsplit("/", 1)
    engine = sqlalchemy.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT",
                                      connect_args={"connect_timeout": 5})
    with engine.connect() as connection:
        exists = connection.execute(sqlalchemy.text(
            "SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).scalar()
        if not exists:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
