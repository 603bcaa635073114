"""One measurement: knob values -> launch -> outcome. Trials, screening and confirmation all
measure through a ``Measurer``, so they apply knobs, scrub the environment and parse output
the same way. The backend decides how a launch runs: a fresh process (``ProcessBackend``,
the default), a fork of a pre-imported process (``tuner.execution.forkserver``), or, for
benchmarks of the search itself, a draw from a recorded surface
(``tuner.testing.surfaces.ReplayBackend``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.execution.backend import Backend, ProcessBackend, RunRequest
from tuner.execution.runner import OnReading, Outcome
from tuner.goal import Goal
from tuner.settings import Settings, child_base_environment
from tuner.space.search_space import SearchSpace
from tuner.space.workload import parser_of, run_timeout


@dataclass
class Measurer:
    space: SearchSpace
    settings: Settings
    backend: Backend = field(default_factory=ProcessBackend)

    def __post_init__(self) -> None:
        self.metric = self.space.spec.objective.metric
        self.base_env = child_base_environment(self.space.controlled_env,
                                               secrets=self.settings.secrets())

    def request(self, applied: Mapping[str, Any]) -> RunRequest:
        return RunRequest(launch=self.space.launch(applied), applied=dict(applied),
                          metric=self.metric, timeout=run_timeout(self.space.spec.workload),
                          base_env=self.base_env, parser_spec=parser_of(self.space.spec.workload),
                          tail_lines=self.settings.output_tail_lines,
                          kill_grace=self.settings.kill_grace_seconds,
                          goal=Goal.of(self.space.spec.objective.direction))

    def run(self, applied: Mapping[str, Any],
            on_reading: OnReading | None = None) -> Outcome:
        return self.backend.run(self.request(applied), on_reading)
