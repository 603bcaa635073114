"""One measurement: knob values -> launch -> outcome. Trials, screening and confirmation all
measure through a ``Measurer``, so they apply knobs, scrub the environment and parse output
the same way. The backend decides how a launch runs: a fresh process (``ProcessBackend``,
the default), a fork of a pre-imported process (``tuner.execution.forkserver``), or, for
benchmarks of the search itself, a draw from a recorded surface
(``tuner.testing.surfaces.ReplayBackend``).

Proof that a value arrived: with a ``workload.echo`` pattern, every run's read-back
(``Outcome.echoed``) is compared with the values asked for (knobs left ``unset`` ask for
nothing). A value the program reports differently fails the run, whatever else happened to it
(a pruned run too: its readings measured other settings); a group it never printed fails a run
that otherwise succeeded. The reason shows both values: ``threads: asked for 4, the program
reported 2 (echo pattern '...')``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuner.execution.backend import Backend, ProcessBackend, RunRequest
from tuner.execution.echo import mismatches
from tuner.execution.runner import OnReading, Outcome, Status
from tuner.execution.system_backend import SystemBackend, with_system_settings
from tuner.goal import Goal
from tuner.knobs import UNSET
from tuner.settings import Settings, child_base_environment
from tuner.space.search_space import SearchSpace
from tuner.space.workload import parser_of, run_timeout


@dataclass
class Measurer:
    space: SearchSpace
    settings: Settings
    backend: Backend = field(default_factory=ProcessBackend)

    def __post_init__(self) -> None:
        if self.space.system_knobs and not isinstance(self.backend, SystemBackend):
            # the one place every study, screening, confirmation and ci run gets its runs:
            # a launch that changes the machine always goes through the journal
            self.backend = with_system_settings(self.backend, self.space.host, self.settings)
        self.metric = self.space.spec.objective.metric
        self.base_env = child_base_environment(self.space.controlled_env,
                                               secrets=self.settings.secrets())

    def request(self, applied: Mapping[str, Any]) -> RunRequest:
        return RunRequest(launch=self.space.launch(applied), applied=dict(applied),
                          metric=self.metric, timeout=run_timeout(self.space.spec.workload),
                          base_env=self.base_env, parser_spec=parser_of(self.space.spec.workload),
                          tail_lines=self.settings.output_tail_lines,
                          kill_grace=self.settings.kill_grace_seconds,
                          goal=Goal.of(self.space.spec.objective.direction),
                          echo=self.space.spec.workload.echo)

    def run(self, applied: Mapping[str, Any],
            on_reading: OnReading | None = None) -> Outcome:
        outcome = self.backend.run(self.request(applied), on_reading)
        return self.checked(outcome, applied)

    def checked(self, outcome: Outcome, applied: Mapping[str, Any]) -> Outcome:
        """``outcome``, failed if the program's read-back contradicts ``applied`` (see the
        module); as it is without an echo pattern."""
        pattern = self.space.spec.workload.echo
        if pattern is None:
            return outcome
        asked = {name: applied[name] for name in re.compile(pattern).groupindex
                 if name in applied and applied[name] != UNSET}
        if not asked:
            return outcome
        if not outcome.echoed:
            if not outcome.ok:
                return outcome
            return dataclasses.replace(outcome, status=Status.FAILED, reason=(
                f"the echo pattern {pattern!r} was not read: this backend does not read "
                f"settings back"))
        wrong = mismatches(pattern, asked, outcome.echoed, missing=outcome.ok)
        if not wrong:
            return outcome
        if outcome.status in (Status.OK, Status.PRUNED):
            return dataclasses.replace(outcome, status=Status.FAILED, reason="; ".join(wrong))
        return dataclasses.replace(outcome, reason="; ".join([outcome.reason, *wrong]))
