"""One measurement: knob values -> launch -> outcome. Trials, screening and confirmation all
measure through a ``Measurer``, so they apply knobs, scrub the environment and parse output
the same way. The backend decides how a launch runs: a fresh process (``ProcessBackend``,
the default), a fork of a pre-imported process (``tuner.forkserver``), or, for benchmarks of the
search itself, a draw from a recorded surface (``tuner.surfaces.ReplayBackend``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner import runner
from tuner.launch import Launch
from tuner.parsers import Reading, make_parser
from tuner.runner import Outcome
from tuner.settings import Settings, child_base_environment
from tuner.space import SearchSpace
from tuner.workload import parser_of, run_timeout


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    launch: Launch
    applied: Mapping[str, Any]
    metric: str
    timeout: float
    base_env: Mapping[str, str]
    parser_spec: Any
    tail_lines: int
    kill_grace: float
    maximize: bool = True


class Backend(ABC):
    """How a launch is run. ``run`` must never raise for anything the workload does."""

    @abstractmethod
    def run(self, request: RunRequest,
            on_reading: Callable[[Reading], bool | str] | None) -> Outcome:
        """Run once and return the outcome."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources (a fork server, say)."""


class ProcessBackend(Backend):
    def run(self, request: RunRequest,
            on_reading: Callable[[Reading], bool | str] | None) -> Outcome:
        return runner.run(request.launch, parser=lambda: make_parser(request.parser_spec),
                          metric=request.metric, timeout=request.timeout,
                          base_env=request.base_env, tail_lines=request.tail_lines,
                          kill_grace=request.kill_grace, maximize=request.maximize,
                          on_reading=on_reading)


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
                          maximize=self.space.spec.objective.direction == "maximize")

    def run(self, applied: Mapping[str, Any],
            on_reading: Callable[[Reading], bool | str] | None = None) -> Outcome:
        return self.backend.run(self.request(applied), on_reading)
