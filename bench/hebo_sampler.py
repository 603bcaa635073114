"""HEBO (Huawei's heteroscedastic evolutionary Bayesian optimisation, the NeurIPS 2020
black-box challenge winner) as an Optuna sampler, for ``bench/time_to_answer.py`` only.

HEBO pins ``numpy<1.25`` and ``pymoo==0.6.0``, which tuner's own environment cannot hold
(TensorFlow 2.21 needs numpy 2), so it runs in a venv of its own (README, "Time to a
confirmed answer"). Like optunahub's HEBO sampler: every knob is one HEBO parameter (integer
range or categories), the completed trials are observed (HEBO minimises: a throughput is
negated), and each trial asks HEBO for one suggestion; pruned trials are not observed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState


class HEBOSampler(optuna.samplers.BaseSampler):
    def __init__(self, *, seed: int, n_startup_trials: int) -> None:
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.random = optuna.samplers.RandomSampler(seed=seed)
        self.space_search = optuna.search_space.IntersectionSearchSpace()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        space = self.space_search.calculate(study)
        return {k: v for k, v in space.items() if not v.single()}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if all(k in t.params for k in search_space) and t.value is not None]
        if len(done) < self.n_startup_trials:
            return {}
        import pandas as pd
        import torch
        from hebo.design_space.design_space import DesignSpace
        from hebo.optimizers.hebo import HEBO

        params = []
        for name, dist in search_space.items():
            if isinstance(dist, IntDistribution):
                params.append({"name": name, "type": "int", "lb": dist.low, "ub": dist.high})
            else:
                assert isinstance(dist, CategoricalDistribution)
                params.append({"name": name, "type": "cat",
                               "categories": [str(c) for c in dist.choices]})
        np.random.seed(self.seed + trial.number)
        torch.manual_seed(self.seed + trial.number)
        optimizer = HEBO(DesignSpace().parse(params), scramble_seed=self.seed)
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        frame = pd.DataFrame([{n: (str(t.params[n]) if isinstance(
            search_space[n], CategoricalDistribution) else t.params[n]) for n in search_space}
                              for t in done])
        optimizer.observe(frame, np.array([[sign * float(t.value or 0.0)] for t in done]))
        row = optimizer.suggest(n_suggestions=1).iloc[0]
        out: dict[str, Any] = {}
        for name, dist in search_space.items():
            if isinstance(dist, IntDistribution):
                step = dist.step
                value = int(round((int(row[name]) - dist.low) / step) * step + dist.low)
                out[name] = min(dist.high, max(dist.low, value))
            else:
                assert isinstance(dist, CategoricalDistribution)
                out[name] = next(c for c in dist.choices if str(c) == str(row[name]))
        return out

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.random.sample_independent(study, trial, param_name, param_distribution)
