"""The contract every backend keeps (``tuner.execution.backend.Backend``), parametrised over
every mode in ``tuner.testing.BACKEND_MODES``: an Outcome for whatever the workload does,
never an exception; an OK outcome carries the metric and its intervals; the callback's
PRUNE and ENOUGH end the run as PRUNED and as OK at the mean of the intervals so far. The
modes that run real programs also keep the failure contract: a crash is FAILED with its
reason and output tail, a hang TIMEOUT, output without the metric NO_METRIC.

Real runs use ``workloads.replay`` (forkable, so the fork mode really forks) and
``tests/programs/fake_workload.py`` (a plain script: a crash with a traceback)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKE_WORKLOAD, PYTHON
from tuner.execution import (
    Backend,
    Decision,
    ForkServerBackend,
    Launch,
    Outcome,
    Reading,
    RunRequest,
    Status,
)
from tuner.testing import BACKEND_MODES, PROCESS_MODES, BackendSupplier, replay_launch

ENV = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module", params=BACKEND_MODES)
def supplied(request: pytest.FixtureRequest) -> Iterator[tuple[Backend, Path]]:
    """A backend of each mode, shared by the module's tests (one fork server in all), and
    the flat surface file its replay launches read."""
    supplier = BackendSupplier(request.param)
    with supplier as backend:
        yield backend, supplier.surface_file


@pytest.fixture
def backend(supplied: tuple[Backend, Path]) -> Backend:
    return supplied[0]


@pytest.fixture
def surface_file(supplied: tuple[Backend, Path]) -> Path:
    return supplied[1]


#: For the tests of the modes that run real programs (the same module-wide backends).
programs_only = pytest.mark.parametrize("supplied", PROCESS_MODES, indirect=True)


def request_for(launch: Launch, *, metric: str = "throughput",
                timeout: float = 20.0) -> RunRequest:
    return RunRequest(launch=launch, metric=metric, timeout=timeout, base_env=ENV,
                      tail_lines=10, kill_grace=0.5)


def stop_at(interval: int, decision: Decision, seen: list[Reading]):  # type: ignore[no-untyped-def]
    def on_reading(reading: Reading) -> Decision:
        seen.append(reading)
        return decision if reading.interval == interval else Decision.CONTINUE
    return on_reading


def test_modes_cover_every_backend() -> None:
    assert set(PROCESS_MODES) < set(BACKEND_MODES)
    with pytest.raises(ValueError, match="unknown backend mode"):
        BackendSupplier("nope")


def test_an_ok_run_carries_the_metric_and_its_intervals(backend: Backend,
                                                        surface_file: Path) -> None:
    outcome = backend.run(request_for(replay_launch(surface_file, time_scale=0)), None)
    assert isinstance(outcome, Outcome)
    assert outcome.status is Status.OK, outcome.reason + "\n" + outcome.tail
    assert outcome.metrics["throughput"] > 0
    assert len(outcome.intervals["throughput"]) >= 3
    if isinstance(backend, ForkServerBackend):
        assert backend.servers, f"not forked: {backend.failures}"


def test_prune_gives_a_pruned_outcome(backend: Backend, surface_file: Path) -> None:
    seen: list[Reading] = []
    outcome = backend.run(request_for(replay_launch(surface_file)),
                          stop_at(2, Decision.PRUNE, seen))
    assert outcome.status is Status.PRUNED, outcome.reason + "\n" + outcome.tail
    assert [r.interval for r in seen] == [1, 2]


def test_enough_gives_an_ok_outcome_at_the_mean_so_far(backend: Backend,
                                                       surface_file: Path) -> None:
    seen: list[Reading] = []
    outcome = backend.run(request_for(replay_launch(surface_file)),
                          stop_at(3, Decision.ENOUGH, seen))
    assert outcome.ok, outcome.reason + "\n" + outcome.tail
    values = outcome.intervals["throughput"]
    assert values == [r.value for r in seen] and len(values) == 3
    assert outcome.metrics["throughput"] == pytest.approx(statistics.fmean(values))


@programs_only
def test_a_crash_is_failed_with_its_reason_and_tail(backend: Backend) -> None:
    launch = Launch(argv=(PYTHON, FAKE_WORKLOAD, "--behaviour", "crash"))
    outcome = backend.run(request_for(launch), None)
    assert outcome.status is Status.FAILED
    assert outcome.reason == "exited with status 1"
    assert "ZeroDivisionError" in outcome.tail


@programs_only
def test_a_failing_workload_is_failed_with_its_reason_and_tail(backend: Backend,
                                                               surface_file: Path) -> None:
    """The fork mode runs this one in a fork: its own exit status and output."""
    outcome = backend.run(request_for(replay_launch(surface_file, "--no-such-flag")), None)
    assert outcome.status is Status.FAILED
    assert outcome.reason == "exited with status 2"
    assert "--no-such-flag" in outcome.tail


@programs_only
def test_a_hang_is_stopped_at_the_timeout(backend: Backend, surface_file: Path) -> None:
    launch = replay_launch(surface_file, time_scale=1000)  # 10 s before its first interval
    outcome = backend.run(request_for(launch, timeout=0.5), None)
    assert outcome.status is Status.TIMEOUT
    assert "0.5 s timeout" in outcome.reason
    assert outcome.seconds >= 0.5
    assert "SETTINGS" in outcome.tail


@programs_only
def test_output_without_the_metric_is_no_metric(backend: Backend, surface_file: Path) -> None:
    outcome = backend.run(request_for(replay_launch(surface_file, time_scale=0),
                                      metric="latency"), None)
    assert outcome.status is Status.NO_METRIC
    assert "no 'latency' metric (found: throughput)" in outcome.reason
    assert "FINAL throughput=" in outcome.tail


@programs_only
def test_a_program_that_cannot_start_is_failed(backend: Backend) -> None:
    outcome = backend.run(request_for(Launch(argv=("/nonexistent/program",))), None)
    assert outcome.status is Status.FAILED
    assert "cannot start '/nonexistent/program'" in outcome.reason
