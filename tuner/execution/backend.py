"""How one launch is run: a ``RunRequest`` (the launch and how to read it) goes to a
``Backend``, which returns an ``Outcome``. ``ProcessBackend`` runs a fresh process; the fork
server (``tuner.execution.forkserver``) forks a pre-imported one; ``tuner.testing`` has a
replay backend that draws from a recorded surface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tuner.execution import runner
from tuner.execution.launch import Launch
from tuner.execution.parsers import make_parser
from tuner.execution.runner import OnReading, Outcome
from tuner.goal import MAXIMIZE, Goal


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
    goal: Goal = MAXIMIZE


class Backend(ABC):
    """How a launch is run. ``run`` must never raise for anything the workload does."""

    @abstractmethod
    def run(self, request: RunRequest,
            on_reading: OnReading | None) -> Outcome:
        """Run once and return the outcome."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources (a fork server, say)."""


class ProcessBackend(Backend):
    def run(self, request: RunRequest,
            on_reading: OnReading | None) -> Outcome:
        return runner.run(request.launch, parser=lambda: make_parser(request.parser_spec),
                          metric=request.metric, timeout=request.timeout,
                          base_env=request.base_env, tail_lines=request.tail_lines,
                          kill_grace=request.kill_grace, goal=request.goal,
                          on_reading=on_reading)
