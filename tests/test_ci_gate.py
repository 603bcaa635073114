"""The regression gate's rules and measurement, without processes: the standing of one
comparison against the threshold, the verdict and exit status of each outcome, the edge of
two speedups from different runs, what changed in an environment, the previous result read
from a best.json, the sampler's view with prior trials, and, by simulation, the gate's power:
a 10% regression of the deployed settings is called ``regressed`` in at least 95% of seeded
runs, unchanged settings in at most 5%."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest

from tuner.ci.environment import changes, microcode, workload_version
from tuner.ci.gate_race import DEPLOYED, GateRace, edge
from tuner.ci.previous import PreviousError, from_file
from tuner.ci.prior import WithPrior, prior_trials
from tuner.ci.verdict import (
    EXIT_CODES,
    Comparison,
    decided,
    exit_code,
    standing,
    verdict_of,
)
from tuner.execution.runner import Outcome, Status
from tuner.goal import MAXIMIZE
from tuner.study.interleave import Entry
from tuner.study.sequential import Looks


@pytest.mark.parametrize(("ratio", "low", "high", "expected"), [
    (0.90, 0.85, 0.96, "loss"),       # below 1 and beyond the threshold
    (0.97, 0.96, 0.98, "behind"),     # measurably worse, within the threshold
    (1.00, 0.97, 1.03, "fine"),       # not worse by more than the threshold
    (1.30, 1.20, 1.40, "fine"),
    (0.96, 0.90, 0.99, "open"),       # worse, but is it by more than 5%? not yet known
    (0.99, 0.80, 1.20, "open"),       # too wide to say
])
def test_standing_against_a_5_percent_threshold(ratio: float, low: float, high: float,
                                                expected: str) -> None:
    assert standing(ratio, low, high, 0.05) == expected


def _c(standing_: str, candidate: bool = False) -> Comparison:
    return Comparison(rival="r", ratio=1.0, low=0.9, high=1.1, standing=standing_,  # type: ignore[arg-type]
                      candidate=candidate)


def test_verdicts_and_exit_codes() -> None:
    assert verdict_of([_c("fine"), _c("loss")]) == "regressed"
    assert verdict_of([_c("open"), _c("loss", candidate=True)]) == "regressed"
    assert verdict_of([_c("fine"), _c("open")]) == "inconclusive"
    assert verdict_of([_c("fine"), _c("behind", candidate=True)]) == "improved"
    assert verdict_of([_c("fine"), _c("behind")]) == "ok"  # behind a baseline, within t
    assert verdict_of([_c("fine"), _c("fine", candidate=True)]) == "ok"
    assert verdict_of([]) == "inconclusive"
    assert decided([_c("fine"), _c("loss")], 0.05) and decided([_c("open"), _c("loss")], 0.05)
    assert not decided([_c("open")], 0.05) and decided([_c("fine"), _c("behind")], 0.05)
    # a candidate that looks 3% better, not yet measurably: more rounds (improved or not)
    looks_better = Comparison(rival="t", ratio=0.97, low=0.955, high=1.01, standing="fine",
                              candidate=True)
    assert not decided([_c("fine"), looks_better], 0.05)
    # ... but a gain below a quarter of the threshold is not worth the rounds
    assert decided([_c("fine"), Comparison(rival="t", ratio=0.99, low=0.96, high=1.02,
                                           standing="fine", candidate=True)], 0.05)
    assert EXIT_CODES == {"ok": 0, "improved": 0, "regressed": 1, "inconclusive": 3}
    assert exit_code("improved") == 0 and exit_code("improved", "changed") == 1
    assert exit_code("improved", "any") == 1 and exit_code("ok", "any") == 0
    assert exit_code("inconclusive", "any") == 3 and exit_code("regressed", "changed") == 1


def test_edge_compares_two_speedups_with_their_errors_added() -> None:
    then = {"ratio": 1.30, "low": 1.25, "high": 1.35, "rounds": 8, "level": 0.99}
    now = {"ratio": 1.10, "low": 1.05, "high": 1.15, "rounds": 8, "level": 0.99}
    found = edge(now, then)
    assert found is not None
    assert found["ratio"] == pytest.approx(1.10 / 1.30)
    assert found["low"] < found["ratio"] < found["high"] < 1.0
    # wider parts give a wider edge
    wide = edge({**now, "low": 0.9, "high": 1.35}, then)
    assert wide is not None and wide["high"] - wide["low"] > found["high"] - found["low"]
    assert edge(now, None) is None and edge(now, {"ratio": 1.2}) is None


def test_changes_name_what_differs_among_facts_both_recorded() -> None:
    then = {"tensorflow": "2.14.0", "kernel": "6.1", "host_class": "a", "cpu_model": "X"}
    now = {"tensorflow": "2.21.0", "kernel": "6.1", "host_class": "b", "cpu_model": "X",
           "microcode": "0x1"}
    found = changes(then, now)
    assert [(c.field, c.then, c.now) for c in found] == [("tensorflow", "2.14.0", "2.21.0")]
    assert str(found[0]) == "TensorFlow 2.14.0 -> 2.21.0"
    assert changes(now, now) == []


def test_microcode_and_workload_version(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmicrocode\t: 0xa0011d1\n")
    assert microcode(info) == "0xa0011d1"
    info.write_text("processor\t: 0\n")
    assert microcode(info) == "unknown"
    assert workload_version(["sh", "-c", "echo; echo 'prog 1.2.3'; echo more"], {}) == \
        "prog 1.2.3"
    assert workload_version(["/nonexistent/prog"], {}).startswith("unknown (")
    assert "exit status 3" in workload_version(["sh", "-c", "exit 3"], {})


def test_previous_settings_from_a_best_json(tmp_path: Path) -> None:
    good = tmp_path / "best.json"
    good.write_text(json.dumps({
        "knobs": {"intra_op": 4}, "environment": {"tensorflow": "2.14.0"},
        "speedups": {"defaults": {"ratio": 1.3, "low": 1.2, "high": 1.4, "rounds": 6}}}))
    found = from_file(good)
    assert found.knobs == {"intra_op": 4}
    assert found.speedup_then is not None and found.speedup_then["ratio"] == 1.3
    assert found.environment == {"tensorflow": "2.14.0"}
    for content, expected in (("{not json", "not JSON"), ("[1, 2]", "expected a JSON object"),
                              ('{"knobs": [1]}', "field 'knobs'"),
                              ("x" * 1_000_001, "larger than")):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(PreviousError, match=expected) as info:
            from_file(bad)
        assert str(bad) in str(info.value)
    with pytest.raises(PreviousError, match="cannot read"):
        from_file(tmp_path / "missing.json")
    # a speedup without a usable interval is no speedup
    good.write_text(json.dumps({"knobs": {}, "speedups": {"defaults": {"ratio": 1.3}}}))
    assert from_file(good).speedup_then is None


def _objective(trial: optuna.Trial) -> float:
    return 100.0 - (trial.suggest_int("x", 0, 40) - 31) ** 2


def test_the_sampler_sees_prior_trials_and_the_study_does_not_keep_them() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    old = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    old.optimize(_objective, n_trials=30)
    prior = prior_trials(old.trials, limit=20)
    assert len(prior) == 20 and all(t.number < 0 for t in prior)
    seen: list[int] = []

    class Spy(optuna.samplers.TPESampler):
        def _count(self, study: Any) -> None:
            seen.append(len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))))

        def sample_relative(self, study: Any, trial: Any, space: Any) -> Any:
            self._count(study)
            return super().sample_relative(study, trial, space)

        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            self._count(study)
            return super().sample_independent(study, trial, name, dist)

    new = optuna.create_study(direction="maximize", sampler=WithPrior(
        Spy(seed=1, n_startup_trials=5), prior, old_defaults=None))
    new.optimize(_objective, n_trials=6)
    assert seen[0] == 20 and seen[-1] == 25  # the previous trials, then its own too
    assert len(new.trials) == 6 and all(t.number >= 0 for t in new.trials)  # none stored


def test_prior_trials_lead_the_first_proposals_towards_the_old_optimum() -> None:
    """Over 10 seeds, the first 6 proposals of TPE land nearer the optimum with the previous
    study's trials as prior knowledge than without (measured here: about half as far)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with_prior, without = [], []
    for seed in range(10):
        old = optuna.create_study(direction="maximize",
                                  sampler=optuna.samplers.TPESampler(seed=seed))
        old.optimize(_objective, n_trials=30)
        for found, sampler in (
                (with_prior, WithPrior(optuna.samplers.TPESampler(seed=seed + 100,
                                                                  n_startup_trials=5),
                                       prior_trials(old.trials, 20), old_defaults=None)),
                (without, optuna.samplers.TPESampler(seed=seed + 100, n_startup_trials=5))):
            new = optuna.create_study(direction="maximize", sampler=sampler)
            new.optimize(_objective, n_trials=6)
            found += [abs(t.params["x"] - 31) for t in new.trials]
    assert sum(with_prior) < 0.75 * sum(without)


def test_prior_values_are_put_on_the_new_scale_once_the_defaults_ran() -> None:
    old = optuna.create_study(direction="maximize")
    old.add_trial(optuna.trial.create_trial(params={"x": 3}, value=200.0, distributions={
        "x": optuna.distributions.IntDistribution(0, 40)}))
    prior = prior_trials(old.trials, 10)
    sampler = WithPrior(optuna.samplers.RandomSampler(seed=0), prior, old_defaults=100.0)
    new = optuna.create_study(direction="maximize", sampler=sampler)
    view = sampler._view(new)
    assert [t.value for t in view.get_trials()] == [200.0]  # no defaults yet: as stored
    new.add_trial(optuna.trial.create_trial(
        params={"x": 1}, value=50.0, user_attrs={"role": "defaults"},
        distributions={"x": optuna.distributions.IntDistribution(0, 40)}))
    assert [t.value for t in view.get_trials()] == [100.0, 50.0]  # the defaults halved
    assert prior[0].value == 200.0  # the prior trial itself is untouched


@dataclass
class SimulatedMeasurer:
    """Each configuration's true throughput times a log-normal noise of ``noise``."""

    truth: dict[str, float]
    noise: float
    rng: random.Random
    metric: str = "throughput"
    runs: int = field(default=0)

    def run(self, applied: dict[str, Any]) -> Outcome:
        self.runs += 1
        value = self.truth[applied["name"]] * math.exp(self.rng.gauss(0.0, self.noise))
        return Outcome(status=Status.OK, reason="", metrics={self.metric: value})


def _gate(truth: dict[str, float], seed: int, *, noise: float = 0.05,
          candidates: tuple[str, ...] = ()) -> tuple[str, int]:
    rivals = [Entry(label=name, applied={"name": name}) for name in truth if name != DEPLOYED]
    race = GateRace(Entry(label=DEPLOYED, applied={"name": DEPLOYED}), rivals,
                    threshold=0.05, goal=MAXIMIZE, candidates=frozenset(candidates))
    measurer = SimulatedMeasurer(truth, noise, random.Random(seed))
    race.run(measurer, Looks.growing(4, 30))  # type: ignore[arg-type]
    return verdict_of(race.judged), race.rounds


SEEDS = 200


def test_a_10_percent_regression_is_called_regressed_in_95_percent_of_seeds() -> None:
    """The deployed settings were 1.3x the defaults; after the upgrade they run 10% slower
    than the defaults (5% run-to-run noise, as on a busy VM)."""
    verdicts = [_gate({"defaults": 1000.0, "vendor": 1050.0, DEPLOYED: 900.0}, seed)[0]
                for seed in range(SEEDS)]
    assert verdicts.count("regressed") / SEEDS >= 0.95


def test_a_10_percent_loss_to_the_new_best_is_called_regressed_in_95_percent_of_seeds() -> None:
    truth = {"defaults": 800.0, "vendor": 850.0, "trial 7": 1100.0, "trial 9": 1050.0,
             DEPLOYED: 1000.0}
    verdicts = [_gate(truth, seed, candidates=("trial 7", "trial 9"))[0]
                for seed in range(SEEDS)]
    assert verdicts.count("regressed") / SEEDS >= 0.95


def test_unchanged_settings_are_called_regressed_in_at_most_5_percent_of_seeds() -> None:
    """Nothing changed: the deployed settings are still 1.3x the defaults, and the re-tune's
    candidates are the same configuration in effect (equal throughput): every comparison's
    truth is at or above 1, so only noise can call a regression."""
    truth = {"defaults": 770.0, "vendor": 800.0, "trial 3": 1000.0, DEPLOYED: 1000.0}
    outcomes = [_gate(truth, seed, candidates=("trial 3",)) for seed in range(SEEDS)]
    verdicts = [v for v, _ in outcomes]
    assert verdicts.count("regressed") / SEEDS <= 0.05
    # and the gate has the power to say so: most runs decide "ok", few run out of rounds
    assert verdicts.count("ok") / SEEDS >= 0.75
