"""The answer every surface shows, from a study's stored trials: the demo's case (the
search's highest single value was no better than the defaults in the confirmation), an
unconfirmed answer, and a best that reused an earlier measurement."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from tuner.results.render import render
from tuner.results.summary import summarize
from tuner.store import attributes, records

THREADS = IntDistribution(1, 8)


def study_with(values: list[float], *, duplicate: dict[int, int] | None = None
               ) -> optuna.Study:
    """Trial 0 the defaults (no params), trial 1 the vendor, the rest search trials; trial
    ``n`` has the value ``values[n]``."""
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("unit", "images/s")
    attributes.put_spec(study, _spec(), "name: demo\n")
    for number, value in enumerate(values):
        role = {0: "defaults", 1: "vendor"}.get(number, "search")
        applied: dict[str, Any] = {} if role == "defaults" else {"threads": number}
        attrs: dict[str, Any] = {"role": role, "applied": applied, "samples": [value]}
        if duplicate and number in duplicate:
            attrs = {**attrs, "duplicate_of": duplicate[number], "samples": [],
                     "applied": {"threads": duplicate[number]}}
        params = {} if role == "defaults" else {"threads": min(number, 8)}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=value, params=params,
            distributions={k: THREADS for k in params}, user_attrs=attrs))
    return study


def _spec() -> Any:
    from tuner.spec.models import StudySpec

    return StudySpec.model_validate({"name": "demo", "workload": {"builtin": "resnet"},
                                     "knobs": {"intra_op": [1, 2]}})


def confirmation(best: str) -> dict[str, Any]:
    def entry(label: str, trial: int, mean: float, ratio: float, verdict: str) -> dict[str, Any]:
        speedups = {} if label == "defaults" else {"defaults": {
            "ratio": ratio, "low": ratio - 0.03, "high": ratio + 0.03, "verdict": verdict}}
        return {"label": label, "trial": trial, "applied": {}, "values": [mean] * 5,
                "median": mean, "speedups": speedups,
                "throughput": {"mean": mean, "low": mean - 3, "high": mean + 3}}
    return {"entries": [entry("defaults", 0, 124.1, 1.0, ""),
                        entry("vendor", 1, 118.0, 0.95, "loss"),
                        entry("trial 3", 3, 117.0, 0.94, "loss")],
            "best": best, "rounds": 5, "comparisons": 5, "at_trials": 10}


def test_the_confirmed_defaults_are_the_answer_not_the_highest_single_run() -> None:
    study = study_with([112.8, 118.0, 120.0, 137.4])
    records.put(study.set_user_attr, "confirmation", confirmation("defaults"))
    summary = summarize(study)
    answer = summary.answer
    assert answer is not None and answer.confirmed
    assert (answer.trial, answer.value, answer.low, answer.high) == (0, 124.1, 121.1, 127.1)
    assert answer.knobs == {} and summary.best_value == 124.1
    assert answer.label == ("124.1 [121.1, 127.1] images/s, confirmed over 5 interleaved "
                            "rounds — trial 0 (defaults)")
    text = render(summary)
    assert f"Best: throughput {answer.label}" in text and "137.4" not in text
    assert "No configuration measurably beat the baselines" in text


def test_before_the_confirmation_the_answer_says_it_is_unconfirmed() -> None:
    summary = summarize(study_with([112.8, 118.0, 125.0, 130.0]))
    answer = summary.answer
    assert answer is not None and not answer.confirmed and answer.interval is None
    assert (answer.trial, answer.value, answer.knobs) == (3, 130.0, {"threads": 3})
    assert "unconfirmed: the search value of 1 single run" in answer.label
    assert summary.speedups["defaults"] == {"ratio": 130.0 / 112.8}


def test_a_best_that_reused_a_measurement_names_the_trial_that_measured_it() -> None:
    summary = summarize(study_with([100.0, 101.0, 130.0, 120.0, 130.0], duplicate={4: 2}))
    assert summary.answer is not None and summary.answer.trial == 2
    assert summary.best is not None and summary.best.duplicate_of is None


def test_the_note_names_tuners_answer_and_why_optunas_best_trial_differs() -> None:
    from optuna_dashboard import get_note

    from tuner.results.publish import publish

    study = study_with([112.8, 118.0, 120.0, 137.4])
    records.put(study.set_user_attr, "confirmation", confirmation("defaults"))
    assert publish(study) and not publish(study)  # written once per answer
    note = get_note(study)
    answer = summarize(study).answer
    assert answer is not None and answer.label in note
    assert "Optuna's *best trial* (trial 3, 137.4)" in note
    assert "did not support it" in note and "No knob set: the framework defaults." in note
    assert records.get(study.user_attrs, "tuner_best")["trial"] == 0


def test_a_candidate_that_left_the_race_says_why_in_the_report() -> None:
    study = study_with([112.8, 118.0, 120.0, 137.4])
    record = confirmation("defaults")
    why = ("left the race after 6 rounds: 1.00x [0.99, 1.01] of trial 2, the same within "
           "+/-2.0%")
    record["entries"][2]["dropped"] = why
    records.put(study.set_user_attr, "confirmation", record)
    text = render(summarize(study))
    line = next(x for x in text.splitlines() if x.startswith("  candidate trial 3:"))
    assert line.endswith(f"over defaults ({why})")


def test_a_baseline_that_left_the_race_says_so_beside_its_speedup() -> None:
    study = study_with([112.8, 118.0, 120.0, 137.4])
    record = confirmation("trial 3")
    defaults, vendor, best = record["entries"]
    best["speedups"] = {
        "defaults": {"ratio": 1.2, "low": 1.17, "high": 1.23, "verdict": "win"},
        "vendor": {"ratio": 1.1, "low": 1.09, "high": 1.11, "verdict": "win"}}
    why = "left the race after 4 rounds: its intervals against the candidates still racing " \
          "within +/-2.0%"
    vendor["dropped"] = why
    records.put(study.set_user_attr, "confirmation", record)
    lines = render(summarize(study)).splitlines()
    assert next(x for x in lines if x.startswith("Speedup over vendor settings:")).endswith(
        f"a measured win (vendor {why})")
    assert "left the race" not in next(
        x for x in lines if x.startswith("Speedup over framework defaults:"))
