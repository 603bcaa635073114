"""Recorded surfaces, the in-process replay, and the replay workload through the loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tuner.execution.parsers import Reading
from tuner.execution.runner import Decision, Status
from tuner.host import Host
from tuner.store import records
from tuner.testing.surfaces import ReplayBackend, Sample, Surface, config_key, replay


def tiny_surface(path: Path) -> Surface:
    surface = Surface(name="tiny", description="test", synthetic=True, unit="x/s",
                      maximize=True, axes={"intra_op": [1, 2], "inter_op": [1, 2]},
                      interval_seconds=1.0)
    for intra in (1, 2):
        for inter in (1, 2):
            value = 100.0 * intra + 10 * inter
            surface.configs[config_key({"intra_op": intra, "inter_op": inter})] = [
                Sample(value=value * f, intervals=[value * f] * 4, startup=5.0, seconds=9.5)
                for f in (0.98, 1.0, 1.02)]
    surface.baselines["defaults"] = {"applied": {}, "samples": [
        Sample(value=150.0, intervals=[150.0] * 4, startup=5.0, seconds=9.5).to_dict()]}
    surface.save(path)
    return surface


def test_lookup_optimum_and_round_trip(tmp_path: Path) -> None:
    made = tiny_surface(tmp_path / "s.json")
    loaded = Surface.load(tmp_path / "s.json")
    assert loaded.optimum() == ({"intra_op": 2, "inter_op": 2}, pytest.approx(220.0))
    assert loaded.true_value({"intra_op": 1, "inter_op": 1}) == pytest.approx(110.0)
    assert loaded.true_value({}) == 150.0  # the defaults baseline
    assert loaded.samples_for({"intra_op": 3, "inter_op": 1}) is None
    assert loaded.within(0.02) == [config_key({"intra_op": 2, "inter_op": 2})]
    assert loaded.to_dict() == made.to_dict()


def test_replay_charges_what_a_pruned_run_costs() -> None:
    sample = Sample(value=100.0, intervals=[90.0, 100.0, 110.0, 100.0], startup=5.0,
                    seconds=9.5)
    full = replay(sample, metric="throughput", interval_seconds=1.0, on_reading=None)
    assert full.ok and full.seconds == 9.5 and full.metrics == {"throughput": 100.0}

    def prune_second(reading: Reading) -> Decision:
        return Decision.PRUNE if reading.interval == 2 else Decision.CONTINUE

    pruned = replay(sample, metric="throughput", interval_seconds=1.0, on_reading=prune_second)
    assert pruned.status is Status.PRUNED and pruned.seconds == 7.0

    def enough_third(reading: Reading) -> Decision:
        return Decision.ENOUGH if reading.interval == 3 else Decision.CONTINUE

    early = replay(sample, metric="throughput", interval_seconds=1.0, on_reading=enough_third)
    assert early.ok and early.seconds == 8.0 and early.metrics["throughput"] == 100.0


def test_replay_backend_draws_recorded_samples(tmp_path: Path) -> None:
    from tuner.execution.backend import RunRequest
    from tuner.execution.launch import Launch
    from tuner.spec.models import ParserSpec

    surface = tiny_surface(tmp_path / "s.json")
    backend = ReplayBackend(surface, seed=1)
    request = RunRequest(launch=Launch(argv=("x",)), applied={"intra_op": 2, "inter_op": 1},
                         metric="throughput", timeout=10, base_env={},
                         parser_spec=ParserSpec(preset="protocol"), tail_lines=5,
                         kill_grace=1)
    values = {backend.run(request, None).metrics["throughput"] for _ in range(30)}
    assert values == {210 * 0.98, 210.0, 210 * 1.02}
    assert backend.seconds == pytest.approx(30 * 9.5)
    missing = RunRequest(**{**request.__dict__, "applied": {"intra_op": 9, "inter_op": 1}})
    assert backend.run(missing, None).status is Status.FAILED


def test_a_modelled_surface_judges_by_the_model_and_draws_fresh_runs(tmp_path: Path) -> None:
    """A synthetic surface's truth is its model's mean, not the mean of the few runs stored
    beside it, and its replay draws new runs from the model (scattered as its noise says)
    rather than one of those few."""
    import math
    import random
    import statistics

    from tuner.execution.backend import RunRequest
    from tuner.execution.launch import Launch
    from tuner.spec.models import ParserSpec
    from tuner.testing.surfaces import RunNoise

    noise = RunNoise(run_cv=0.05, interval_cv=0.02, intervals=4, startup=5.0, teardown=0.5)
    surface = tiny_surface(tmp_path / "s.json")
    rng = random.Random(3)
    for key in surface.configs:
        mean = 100.0 * json.loads(key)["intra_op"] + 10 * json.loads(key)["inter_op"]
        # the stored runs favour (1, 2) over (2, 2); the model says the opposite
        mean *= 1.1 if key == config_key({"intra_op": 2, "inter_op": 2}) else 1.0
        surface.model_means[key] = mean
        surface.configs[key] = [noise.sample(mean * 0.9 if key.endswith("1}") else mean, rng,
                                             interval_seconds=1.0) for _ in range(2)]
    surface.baselines["defaults"]["mean"] = 150.0
    surface.noise = noise
    surface.save(tmp_path / "m.json")
    loaded = Surface.load(tmp_path / "m.json")
    assert loaded.to_dict() == surface.to_dict()
    assert loaded.noise == noise
    assert loaded.optimum() == ({"intra_op": 2, "inter_op": 2}, pytest.approx(242.0))
    assert loaded.true_value({"intra_op": 1, "inter_op": 1}) == pytest.approx(110.0)
    assert loaded.true_value({}) == 150.0
    assert loaded.within(0.02) == [config_key({"intra_op": 2, "inter_op": 2})]

    backend = ReplayBackend(loaded, seed=7)
    request = RunRequest(launch=Launch(argv=("x",)), applied={"intra_op": 1, "inter_op": 1},
                         metric="throughput", timeout=10, base_env={},
                         parser_spec=ParserSpec(preset="protocol"), tail_lines=5,
                         kill_grace=1)
    values = [backend.run(request, None).metrics["throughput"] for _ in range(400)]
    stored = {s.value for s in loaded.configs[config_key(request.applied)]}
    assert len(set(values)) == 400 and not set(values) & stored  # fresh runs, not replays
    logs = [math.log(v / 110.0) for v in values]
    assert abs(statistics.fmean(logs)) < 0.01  # about the model's mean (stored: 10% below)
    assert 0.04 < statistics.stdev(logs) < 0.06  # the run's 5% and the intervals' 2%/2
    assert backend.seconds == pytest.approx(400 * (5.0 + 4 + 0.5))
    # a recorded surface (no noise model) still answers with its recorded runs
    recorded = ReplayBackend(tiny_surface(tmp_path / "r.json"), seed=7)
    assert {recorded.run(request, None).metrics["throughput"] for _ in range(30)} == {
        110 * 0.98, 110.0, 110 * 1.02}


def test_a_study_on_the_replay_workload_finds_the_optimum(
        tmp_path: Path, write_study: Callable[[str], Path], local_host: Host) -> None:
    from tuner.results.summary import summarize
    from tuner.testing.studies import run_study_file

    tiny_surface(tmp_path / "s.json")
    path = write_study(f"""
name: replayed
workload: {{builtin: replay, params: {{surface: {tmp_path / 's.json'}}}}}
knobs: {{intra_op: [1, 2], inter_op: [1, 2]}}
baselines: [defaults]
threads_within_binding: false
sampler: {{name: grid}}
budget: {{n_trials: 5}}
noise: {{runs: 2}}
confirm: {{top: 1, rounds: 3, max_rounds: 3}}
""")
    result = run_study_file(path, local_host, f"sqlite:///{tmp_path / 'r.db'}")
    summary = summarize(result.study)
    assert summary.best is not None
    assert summary.best.applied == {"intra_op": 2, "inter_op": 2}
    assert summary.speedups["defaults"]["verdict"] == "win"
    reported = records.get(result.study.trials[1].user_attrs, "reported")
    assert reported["workload"] == "replay" and set(reported["observed"]) == {
        "intra_op", "inter_op"}


def test_replay_workload_refuses_an_unrecorded_configuration(tmp_path: Path) -> None:
    import subprocess
    import sys

    tiny_surface(tmp_path / "s.json")
    proc = subprocess.run([sys.executable, "-m", "workloads.replay", "--surface",
                           str(tmp_path / "s.json"), "--intra-op", "7", "--inter-op", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 3 and "holds no configuration" in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "workloads.replay", "--surface",
                         str(tmp_path / "s.json"), "--intra-op", "2", "--inter-op", "2",
                         "--seed", "3"], capture_output=True, text=True, check=True)
    final = [line for line in ok.stdout.splitlines() if line.startswith("FINAL ")]
    assert final and float(final[0].split("=")[1].split()[0]) in (215.6, 220.0, 224.4)
    assert json.loads(ok.stdout.splitlines()[0][len("SETTINGS "):])["observed"] == {
        "intra_op": 2, "inter_op": 2}
