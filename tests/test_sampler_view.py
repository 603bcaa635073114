"""The defaults trial without params, and a sampler that still learns from it: TPE proposes
exactly what it proposed when the defaults trial carried its params."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution, distribution_to_json
from optuna.trial import TrialState

from tuner.store.sampled import SAMPLER_PARAMS, with_sampler_params
from tuner.study.sampler import BaselineAwareSampler

SPACE = {"threads": IntDistribution(1, 8), "block": CategoricalDistribution([0, 1, 200])}
DEFAULTS = {"threads": 8, "block": 200}


def objective(trial: optuna.Trial) -> float:
    threads = trial.suggest_int("threads", 1, 8)
    block = trial.suggest_categorical("block", [0, 1, 200])
    return 1000.0 - 40 * (threads - 3) ** 2 - (25 if block != 1 else 0)


def history(study: optuna.Study, *, honest: bool) -> None:
    """The defaults trial (honest: no params, its point as a system attribute), then a few
    measured trials."""
    view: dict[str, Any] = {"params": DEFAULTS, "distributions": {
        k: distribution_to_json(d) for k, d in SPACE.items()}}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=800.0, user_attrs={"role": "defaults"},
        params={} if honest else DEFAULTS, distributions={} if honest else SPACE,
        system_attrs={SAMPLER_PARAMS: view} if honest else {}))
    for threads, block in ((1, 0), (5, 1), (2, 200), (6, 0)):
        params = {"threads": threads, "block": block}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, params=params, distributions=SPACE,
            value=objective(optuna.trial.FixedTrial(params))))


def proposals(sampler: optuna.samplers.BaseSampler, *, honest: bool) -> list[dict[str, Any]]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    history(study, honest=honest)
    study.optimize(objective, n_trials=12)
    return [t.params for t in study.trials[5:]]


def test_tpe_proposes_the_same_with_the_defaults_kept_out_of_params() -> None:
    for multivariate in (False, True):
        plain = optuna.samplers.TPESampler(seed=3, n_startup_trials=4,
                                           multivariate=multivariate)
        aware = BaselineAwareSampler(optuna.samplers.TPESampler(
            seed=3, n_startup_trials=4, multivariate=multivariate))
        assert proposals(aware, honest=True) == proposals(plain, honest=False)


def test_without_the_view_tpe_would_not_see_the_defaults() -> None:
    """The control: the plain sampler on the honest history proposes something else (the
    view above is what keeps the search as it was)."""
    plain = optuna.samplers.TPESampler(seed=3, n_startup_trials=4)
    reference = proposals(optuna.samplers.TPESampler(seed=3, n_startup_trials=4),
                          honest=False)
    assert proposals(plain, honest=True) != reference


def test_generic_readers_see_no_params_and_the_view_sees_the_point() -> None:
    study = optuna.create_study(direction="maximize")
    history(study, honest=True)
    assert study.trials[0].params == {}
    assert study.best_trial.number != 0 or study.best_trial.params == {}
    viewed = with_sampler_params(study)
    assert viewed.get_trials()[0].params == DEFAULTS
    assert viewed.trials[0].distributions == SPACE
    assert study.trials[0].params == {}, "the view copies, it does not change the trial"
