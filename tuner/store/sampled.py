"""What the sampler sees of a stored trial. A baseline trial keeps as params only what it set
(the defaults trial none); the point of the space it stands for is stored as the system
attribute ``tuner.store.attributes.SAMPLER_PARAMS``. ``as_sampled`` fills those params in
(a copy), and ``with_sampler_params`` gives a whole study that view (for knob importance)."""

from __future__ import annotations

import copy
from collections.abc import Container
from typing import Any

import optuna
from optuna.distributions import json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from tuner.store import attributes, snapshot

#: The key of ``attributes.SAMPLER_PARAMS``, for ``create_trial(system_attrs=...)``.
SAMPLER_PARAMS = attributes.SAMPLER_PARAMS.key


def as_sampled(trial: FrozenTrial) -> FrozenTrial:
    """``trial`` with the params the sampler sees (a copy, for a baseline trial)."""
    view = attributes.SAMPLER_PARAMS.get(trial)
    if view is None:
        return trial
    clone = copy.copy(trial)
    clone.distributions = {**{k: json_to_distribution(v)
                              for k, v in view["distributions"].items()},
                           **trial.distributions}
    clone.params = {**view["params"], **trial.params}
    return clone


class _SampledStudy:
    """A study whose trials read with the params the sampler sees; all else delegated."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        trials = snapshot.trials(self._study, states, use_cache=use_cache)
        out = [as_sampled(t) for t in trials]
        return copy.deepcopy(out) if deepcopy else out

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    @property
    def best_trial(self) -> FrozenTrial:
        return as_sampled(self._study.best_trial)


def with_sampler_params(study: optuna.Study) -> optuna.Study:
    """``study`` as the sampler sees it (for knob importance)."""
    return _SampledStudy(study)  # type: ignore[return-value]
