"""The baselines in Optuna's own view, honestly: a trial's params are what it set.

The defaults trial sets nothing, so it is stored without params; the vendor trial keeps as
params only the knobs it set to exactly that value. Generic tools (optuna-dashboard,
``optuna best-trial``, ``trials_dataframe``) therefore never show the defaults as a
configuration that was applied.

The sampler still learns from both: each baseline trial carries, as the system attribute
``tuner:sampler_params``, the point of the space it stands for (the values the runtime
chooses by itself for what it left unset, the nearest value in the domain for what lies
outside it) with the distributions. ``BaselineAwareSampler`` wraps the study's sampler and
shows it the trials with those params filled in, so the search proceeds as if they were
ordinary params; ``with_sampler_params`` gives the same view to knob importance.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import FrozenTrial, Trial, TrialState

from tuner.store.attributes import FIXED_PARAMS, ROLE, SAMPLER_PARAMS
from tuner.store.sampled import with_sampler_params
from tuner.study.novelty import propose

if TYPE_CHECKING:
    from tuner.space.search_space import BaselineTrial, SearchSpace



def baseline_trial(space: SearchSpace, baseline: BaselineTrial) -> FrozenTrial:
    """The WAITING trial of ``baseline`` of ``space``: fixed params only for what it set,
    the whole point for the sampler in ``SAMPLER_PARAMS``."""
    point = optuna.trial.FixedTrial(dict(baseline.params))
    with warnings.catch_warnings():  # a value outside a narrowed domain: as before, kept
        warnings.simplefilter("ignore")
        space.suggest(point)  # the distributions a search trial would draw these from
    distributions = {name: point.distributions[name] for name in baseline.params}
    fixed = {name: value for name, value in baseline.params.items()
             if name in baseline.values and name not in baseline.approximate
             and baseline.values[name] == value}
    return optuna.trial.create_trial(
        state=TrialState.WAITING, user_attrs=ROLE.entry(baseline.name),
        system_attrs={FIXED_PARAMS.key: fixed, SAMPLER_PARAMS.key: {
            "params": dict(baseline.params),
            "distributions": {k: distribution_to_json(d) for k, d in distributions.items()}}})


def bind_baseline(trial: Trial) -> bool:
    """Give a running baseline trial the params it set (its fixed params). False for a
    trial enqueued without ``SAMPLER_PARAMS`` (by an older tuner): the caller binds it."""
    system = trial.storage.get_trial(trial._trial_id).system_attrs
    view = SAMPLER_PARAMS.get(system)
    if not isinstance(view, dict):
        return False
    for name, value in FIXED_PARAMS.get(system).items():
        distribution = json_to_distribution(view["distributions"][name])
        _suggest(trial, name, value, distribution)
    return True


def _suggest(trial: Trial, name: str, value: Any, distribution: BaseDistribution) -> None:
    if isinstance(distribution, IntDistribution):
        trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step,
                          log=distribution.log)
    elif isinstance(distribution, FloatDistribution):
        trial.suggest_float(name, distribution.low, distribution.high,
                            step=distribution.step, log=distribution.log)
    elif isinstance(distribution, CategoricalDistribution):
        trial.suggest_categorical(name, list(distribution.choices))
    else:  # pragma: no cover - the space has no other kind
        raise TypeError(f"{name}: unexpected distribution {distribution!r}")


class BaselineAwareSampler(optuna.samplers.BaseSampler):
    """Wraps a sampler; it sees the baseline trials at their ``SAMPLER_PARAMS``, and (given
    the space) never spends a trial on a configuration already taken.

    Call order as any sampler's: ``before_trial``, ``infer_relative_search_space``,
    ``sample_relative``, ``sample_independent`` per remaining param, ``after_trial``."""

    def __init__(self, inner: optuna.samplers.BaseSampler, *,
                 space: SearchSpace | None = None) -> None:
        self.inner = inner
        self.space = space

    def __str__(self) -> str:
        return f"BaselineAware({self.inner})"

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(with_sampler_params(study), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(with_sampler_params(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(with_sampler_params(study), trial, param_name,
                                             param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """The inner sampler's bookkeeping first; then, given the space, a new search trial
        gets a configuration no trial has taken (``tuner.study.novelty``)."""
        self.inner.before_trial(study, trial)
        if self.space is not None:
            propose(self, study, trial, space=self.space)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
