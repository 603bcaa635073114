"""Which Optuna sampler a study gets (``sampler.name`` in the study file).

* ``tpe`` (the default): multivariate TPE with the constant liar (workers in parallel do
  not all try the same point); ``bench/time_to_answer.py`` measured it ahead of the others on
  tuner's own problems (README, "Choosing the sampler").
* ``gp``: Optuna's Gaussian-process sampler (needs PyTorch: ``pip install tuner[torch]``).
* ``cmaes``: CMA-ES (needs the ``cmaes`` package); categorical knobs are sampled
  independently (at random), so it suits spaces of integer knobs.
* ``random``, ``grid``: the references (grid needs a rectangular valid grid).

Model-based samplers start after a few trials of their own (``n_startup_trials``; by default
the baselines plus two, up to a third of the budget, at most 10): the baselines count, so a
12-trial study still gets model-guided trials.
"""

from __future__ import annotations

import warnings

import optuna

from tuner.space.search_space import SearchSpace


def startup_trials(space: SearchSpace) -> int:
    spec = space.spec.sampler
    if spec.n_startup_trials is not None:
        return spec.n_startup_trials
    planned = space.spec.budget.n_trials or 40
    # Baselines count as startup trials. Optuna's default of 10 random trials would leave
    # a 12-trial study no model-guided trial at all.
    return max(len(space.baselines) + 2, min(10, planned // 3))


def make_sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The sampler the study file names, seeded as it says."""
    spec = space.spec.sampler
    if spec.name == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    if spec.name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=spec.seed)
    startup = startup_trials(space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        if spec.name == "gp":
            return optuna.samplers.GPSampler(
                seed=spec.seed, n_startup_trials=startup, warn_independent_sampling=False,
                independent_sampler=optuna.samplers.RandomSampler(seed=spec.seed))
        if spec.name == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=spec.seed, n_startup_trials=startup, consider_pruned_trials=True,
                warn_independent_sampling=False,
                independent_sampler=optuna.samplers.RandomSampler(seed=spec.seed))
        return optuna.samplers.TPESampler(seed=spec.seed, multivariate=spec.multivariate,
                                          n_startup_trials=startup, constant_liar=True)
