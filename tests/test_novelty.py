"""Duplicates are free: no trial of a study repeats a configuration until the whole valid
space has been visited, whatever the sampler proposes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial

from tuner.space.search_space import config_key
from tuner.store.attributes import DUPLICATE_OF, PROPOSAL, ROLE
from tuner.study.opening import make_sampler
from tuner.testing.replay_studies import ReplayOptions, host_for, replay_spec, run_replay
from tuner.testing.surfaces import Surface

SURFACES = Path(__file__).resolve().parents[1] / "bench" / "surfaces"
RESNET = SURFACES / "resnet-small.json"


class Stubborn(optuna.samplers.BaseSampler):
    """Proposes the lowest value of every knob, every time."""

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if isinstance(param_distribution, IntDistribution):
            return param_distribution.low
        assert isinstance(param_distribution, CategoricalDistribution)
        return param_distribution.choices[0]


def search_configs(study: optuna.Study, names: list[str]) -> list[tuple[str, bool]]:
    """(configuration key, reused an earlier result) of every search trial, in order."""
    out = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if ROLE.get(trial) == "search":
            out.append((config_key({n: trial.params[n] for n in names}),
                        DUPLICATE_OF.get(trial) is not None))
    return out


def first_repeat(configs: list[tuple[str, bool]]) -> int:
    seen: set[str] = set()
    for index, (key, _) in enumerate(configs):
        if key in seen:
            return index
        seen.add(key)
    return len(configs)


SAMPLERS = ["tpe", "random", "grid", "stubborn"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_search_visits_every_configuration_before_it_repeats_one(sampler: str) -> None:
    surface = Surface.load(RESNET)
    size = 1
    for values in surface.axes.values():
        size *= len(values)
    spec = replay_spec(surface, RESNET, name=f"novel-{sampler}",
                       budget={"n_trials": size + 8},
                       sampler={"name": "tpe" if sampler == "stubborn" else sampler,
                                "seed": 5},
                       repeats={"min": 1, "max": 2}, pruner={"name": "noise"})
    host = host_for(surface)
    custom = Stubborn() if sampler == "stubborn" else None
    replayed = run_replay(surface, spec, host, ReplayOptions(seed=5, sampler=custom))
    names = replayed.space.names
    assert replayed.space.size == size
    configs = search_configs(replayed.study, names)
    # every valid configuration was visited before the first repeat, and only repeats reuse
    assert first_repeat(configs) == size
    assert len({key for key, _ in configs}) == size
    assert not any(reused for _, reused in configs[:size])
    assert all(reused for _, reused in configs[size:])


def test_a_stubborn_sampler_is_asked_again_then_given_the_nearest_unexplored() -> None:
    surface = Surface.load(RESNET)
    spec = replay_spec(surface, RESNET, name="stubborn", budget={"n_trials": 8},
                       repeats=1, pruner={"name": "none"})
    replayed = run_replay(surface, spec, host_for(surface),
                          ReplayOptions(sampler=Stubborn()))
    search = [t for t in replayed.study.get_trials(deepcopy=False) if ROLE.get(t) == "search"]
    how = [PROPOSAL.get(t) for t in search]
    lowest = {n: min(v) for n, v in surface.axes.items()}
    assert search[0].params == lowest and how[0] == "sampler"
    later = search[1:]
    assert later and all(h.startswith("nearest unexplored") for h in how[1:])
    # the nearest unexplored differs from the stubborn proposal in one knob, by one step
    nearest = later[0].params
    assert sum(nearest[n] != lowest[n] for n in lowest) == 1
    assert len({config_key(t.params) for t in search}) == len(search)


def test_every_sampler_in_the_spec_proposes_new_configurations() -> None:
    """The samplers a study file can name, through make_sampler, on the same surface."""
    surface = Surface.load(RESNET)
    for name in ("tpe", "random", "grid"):
        spec = replay_spec(surface, RESNET, name=f"spec-{name}", budget={"n_trials": 14},
                           sampler={"name": name, "seed": 1}, repeats=1,
                           pruner={"name": "none"})
        replayed = run_replay(surface, spec, host_for(surface))
        assert type(make_sampler(replayed.space)).__name__.lower().startswith(name[:3])
        configs = search_configs(replayed.study, replayed.space.names)
        assert first_repeat(configs) == len(configs)
