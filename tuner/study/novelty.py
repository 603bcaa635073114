"""Duplicates are free: a configuration already measured, or taken by a trial that is running
or waiting, never uses a trial of the budget while the space holds one that was not.

When a search trial starts (``BaselineAwareSampler.before_trial``, inside the gated ask, so
no other worker proposes at the same moment), the sampler proposes a whole configuration on
a scratch copy of the trial (``Draft``). A proposal already taken is asked again, up to
``ATTEMPTS`` times: model-based samplers draw their candidates at random, so another ask
usually differs. If every ask repeats, the trial takes the untaken valid configuration
nearest the sampler's last proposal (fewest knobs changed, then the smallest change), so a
sampler that has converged still spends the trial where it believes the optimum lies. Only
when every valid configuration has been taken may a trial repeat one (it then reuses the
earlier result without running: ``TrialObjective._reuse``).

The configuration chosen becomes the trial's ``fixed_params``, the mechanism of
``Study.enqueue_trial``, so Optuna's own ``suggest_*`` return it; how it was chosen is the
system attribute ``tuner:proposal``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.trial import FrozenTrial

from tuner.space.search_space import SearchSpace, config_key
from tuner.store import snapshot
from tuner.store.attributes import FIXED_PARAMS, PROPOSAL, ROLE, SCREENING
from tuner.store.batch import write_system_attrs
from tuner.store.database import abandoned

#: Asks of the sampler before the nearest untaken configuration is taken instead. Each ask
#: of a model-based sampler refits it to the whole study (TPE: 15 ms at 500 trials), and
#: the nearest untaken configuration to its proposal is where it believes the optimum
#: lies: a third ask cost about a quarter of tuner's time per trial on a 500-trial study,
#: and the time-to-answer benchmark found it no more often correct (README, "Overhead").
ATTEMPTS = 2
#: Spaces up to this many valid configurations are searched whole for the nearest untaken
#: one; larger ones are drawn at random (where a duplicate is rare anyway).
ENUMERATE_UP_TO = 20_000
RANDOM_DRAWS = 200


class Draft:
    """A scratch trial that ``SearchSpace.suggest`` asks and the sampler answers, as it
    would answer the real trial (relative params first, independent ones for the rest);
    nothing is stored."""

    def __init__(self, sampler: optuna.samplers.BaseSampler, study: optuna.Study,
                 trial: FrozenTrial) -> None:
        self.sampler = sampler
        self.study = study
        self.trial = copy.deepcopy(trial)
        self._relative: tuple[dict[str, BaseDistribution], dict[str, Any]] | None = None

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int:
        return int(self._ask(name, IntDistribution(low, high, step=step)))

    def suggest_categorical(self, name: str,
                            choices: Sequence[CategoricalChoiceType]) -> Any:
        return self._ask(name, CategoricalDistribution(choices))

    def _ask(self, name: str, distribution: BaseDistribution) -> Any:
        if distribution.single():
            value = distribution.to_external_repr(distribution.to_internal_repr(
                _only_value(distribution)))
        else:
            value = self._relative_value(name, distribution)
            if value is None:
                value = self.sampler.sample_independent(self.study, self.trial, name,
                                                        distribution)
        self.trial.params[name] = value
        self.trial.distributions[name] = distribution
        return value

    def _relative_value(self, name: str, distribution: BaseDistribution) -> Any:
        if self._relative is None:
            space = self.sampler.infer_relative_search_space(self.study, self.trial)
            self._relative = (space, self.sampler.sample_relative(self.study, self.trial,
                                                                  space) if space else {})
        space, params = self._relative
        if name not in params or name not in space:
            return None
        try:
            check_distribution_compatibility(space[name], distribution)
        except ValueError:
            return None
        value = params[name]
        # a narrowed range (threads within the binding) may not hold the joint proposal
        return value if distribution._contains(distribution.to_internal_repr(value)) else None


def _only_value(distribution: BaseDistribution) -> Any:
    if isinstance(distribution, IntDistribution):
        return distribution.low
    assert isinstance(distribution, CategoricalDistribution)
    return distribution.choices[0]


class RandomDraft:
    """A scratch trial answered uniformly at random (each knob in its valid range)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int:
        return self.rng.randrange(low, high + 1, step)

    def suggest_categorical(self, name: str,
                            choices: Sequence[CategoricalChoiceType]) -> Any:
        return self.rng.choice(list(choices))


def tuned_names(space: SearchSpace, study: optuna.Study) -> list[str]:
    """The knobs a search trial proposes: the space's, but those screening found inert."""
    screened = SCREENING.get(study)
    inert = set(screened.inert) if screened else set()
    return [d.name for d in space.dims if d.name not in inert]


def taken(study: optuna.Study, names: Sequence[str], *, but: int) -> set[str]:
    """Keys of the configurations (of ``names``) that search trials other than number
    ``but`` measured, run or will run. Abandoned trials are no result (their retry is a
    trial); a baseline is not a point of the space (it also applies what the space does not
    tune, and leaves unset what the runtime then chooses)."""
    gone = abandoned(study)
    keys: set[str] = set()
    for trial in snapshot.trials(study):
        if trial.number == but or trial.number in gone or ROLE.get(trial) != "search":
            continue
        values = {**FIXED_PARAMS.get(trial), **trial.params}
        if all(name in values for name in names):
            keys.add(config_key({name: values[name] for name in names}))
    return keys


def integer_spans(space: SearchSpace) -> dict[str, int]:
    """The width of each integer knob's range (knobs with a single value left out)."""
    spans = {}
    for dim in space.dims:
        values = [v for v in dim.domain.values() if isinstance(v, int)]
        if len(values) > 1 and max(values) > min(values):
            spans[dim.name] = max(values) - min(values)
    return spans


def distance(config: Mapping[str, Any], target: Mapping[str, Any],
             spans: Mapping[str, int]) -> tuple[int, float]:
    """How far ``config`` lies from ``target``: knobs changed, then the summed change of
    the integer knobs, each relative to its range (``integer_spans``)."""
    changed, spread = 0, 0.0
    for name, value in config.items():
        other = target.get(name)
        if value == other:
            continue
        changed += 1
        if name in spans and isinstance(value, int) and isinstance(other, int):
            spread += abs(value - other) / spans[name]
    return changed, spread


def nearest_untaken(space: SearchSpace, *, skip: set[str], seen: set[str],
                    target: Mapping[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """The untaken valid configuration nearest ``target`` (ties drawn at random); None when
    every one is taken. Large spaces are drawn at random instead of searched whole."""
    if space.size > ENUMERATE_UP_TO:
        for _ in range(RANDOM_DRAWS):
            drawn = space.suggest(RandomDraft(rng), skip=skip)
            config = {name: drawn[name] for name in target}
            if config_key(config) not in seen:
                return config
        return None
    best: list[dict[str, Any]] = []
    best_distance: tuple[int, float] | None = None
    spans = integer_spans(space)  # once, not per configuration
    for config in space.configurations(skip):
        if config_key(config) in seen:
            continue
        far = distance(config, target, spans)
        if best_distance is None or far < best_distance:
            best, best_distance = [config], far
        elif far == best_distance:
            best.append(config)
    return rng.choice(best) if best else None


def propose(sampler: optuna.samplers.BaseSampler, study: optuna.Study, trial: FrozenTrial, *,
            space: SearchSpace) -> None:
    """Give a new search trial a configuration no other trial has taken (see the module's
    docstring). ``sampler`` answers as the study's sampler would; a trial given its params
    already (a baseline, an enqueued or retried trial) is left alone."""
    storage = study._storage
    # read anew: the inner sampler's before_trial may have written to it (Grid: its grid_id)
    current = storage.get_trial(trial._trial_id)
    if FIXED_PARAMS.key in current.system_attrs or current.params:
        return
    names = tuned_names(space, study)
    if not names:
        return
    skip = {d.name for d in space.dims} - set(names)
    seen = taken(study, names, but=trial.number)
    proposal: dict[str, Any] = {}
    exhausted = not skip and len(seen) >= space.size  # every configuration taken already
    for attempt in range(1, (1 if exhausted else ATTEMPTS) + 1):
        drafted = space.suggest(Draft(sampler, study, current), skip=skip)
        proposal = {name: drafted[name] for name in names}
        if config_key(proposal) not in seen:
            how = "sampler" if attempt == 1 else f"sampler, ask {attempt} (earlier asks " \
                                                  "repeated measured configurations)"
            return _fix(storage, trial, proposal, how)
    nearest = None if exhausted else nearest_untaken(
        space, skip=skip, seen=seen, target=proposal,
        rng=random.Random(f"{study.study_name}:{trial.number}"))
    if nearest is None:
        return _fix(storage, trial, proposal, "sampler (every valid configuration measured)")
    _fix(storage, trial, nearest, f"nearest unexplored configuration (the sampler repeated "
                                  f"measured ones {ATTEMPTS} times)")


def _fix(storage: optuna.storages.BaseStorage, trial: FrozenTrial, params: dict[str, Any],
         how: str) -> None:
    write_system_attrs(storage, trial._trial_id,
                       {**FIXED_PARAMS.entry(params), **PROPOSAL.entry(how)})
    trial.system_attrs[FIXED_PARAMS.key] = params  # Trial reads its fixed params from here
