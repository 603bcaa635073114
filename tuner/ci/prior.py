"""Prior knowledge for a re-tune's sampler: the previous study's trials, seen by the sampler
as if they were trials of the new study, never stored in it.

A re-tune after an upgrade searches the same space on a changed machine; where the landscape
kept its shape, the previous trials say where to look. Adding them to the new study would
mix measurements of two environments in one study (generic Optuna tools would report an old
value as the new study's best); instead ``WithPrior`` wraps the study's sampler and shows it
a view of the study whose trial lists start with the previous trials. Their values are put
on the new study's scale once its defaults baseline has run (times the ratio of the new
defaults' value to the old), so that the sampler compares like with like; until then they
keep their old values (only their order matters to TPE). The new trials outnumber and, as
they come, outweigh them; the sampler itself is unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from tuner.store.attributes import ROLE


class _PriorView:
    """``study`` with ``prior`` in front of its trial lists (everything else is the study)."""

    def __init__(self, study: optuna.Study, prior: Sequence[FrozenTrial],
                 old_defaults: float | None) -> None:
        self._study = study
        self._prior = prior
        self._old_defaults = old_defaults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _scaled(self, own: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        new_defaults = next((t.value for t in own if t.state == TrialState.COMPLETE
                             and ROLE.get(t) == "defaults" and t.value), None)
        if not (new_defaults and self._old_defaults):
            return list(self._prior)
        factor = float(new_defaults) / self._old_defaults
        scaled = []
        for trial in self._prior:
            twin = copy.copy(trial)
            twin.value = float(trial.value or 0.0) * factor
            scaled.append(twin)
        return scaled

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        own = self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache)
        trials = self._scaled(own) + own
        return trials if states is None else [t for t in trials if t.state in states]

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None
                   ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self._get_trials()


def prior_trials(previous: Sequence[FrozenTrial], limit: int) -> list[FrozenTrial]:
    """The previous study's completed trials with params (at most ``limit``, spread evenly
    over them), renumbered below zero so they never collide with the new study's."""
    usable = [t for t in previous if t.state == TrialState.COMPLETE and t.params
              and t.value is not None]
    if len(usable) > limit > 0:
        step = len(usable) / limit
        usable = [usable[int(i * step)] for i in range(limit)]
    out = []
    for index, trial in enumerate(usable):
        twin = copy.copy(trial)
        twin.number = -1 - index
        twin._trial_id = -1 - index
        out.append(twin)
    return out


class WithPrior(optuna.samplers.BaseSampler):
    """``inner``, shown ``prior`` trials before the study's own (see the module)."""

    def __init__(self, inner: optuna.samplers.BaseSampler, prior: Sequence[FrozenTrial], *,
                 old_defaults: float | None) -> None:
        self.inner = inner
        self.prior = list(prior)
        self.old_defaults = old_defaults

    def _view(self, study: optuna.Study) -> optuna.Study:
        return _PriorView(study, self.prior, self.old_defaults)  # type: ignore[return-value]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(self._view(study), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(self._view(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(self._view(study), trial, param_name,
                                             param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
