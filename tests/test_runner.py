"""The runner against real subprocesses: every way a workload can go wrong is an outcome."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import FAKE_WORKLOAD, PYTHON
from tuner.execution.launch import Launch
from tuner.execution.parsers import Reading
from tuner.execution.runner import Decision, RunHooks, RunRequest, Status, run

ENV = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}


def launch(*args: str, env: dict[str, str] | None = None, **kw) -> Launch:  # type: ignore[no-untyped-def]
    return Launch(argv=(PYTHON, FAKE_WORKLOAD, *args), env=env or {}, **kw)


def go(lnch: Launch, timeout: float = 20.0, on_reading=None,  # type: ignore[no-untyped-def]
       hooks: RunHooks | None = None):
    request = RunRequest(launch=lnch, metric="throughput", timeout=timeout, base_env=ENV,
                         tail_lines=10, kill_grace=1.0)
    return run(request, on_reading, hooks)


def test_a_good_run_yields_its_metric_intervals_and_settings() -> None:
    outcome = go(launch("--threads", "3", env={"KMP_BLOCKTIME": "1"}))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.metrics["throughput"] == pytest.approx(1000.0, rel=0.01)
    assert len(outcome.intervals["throughput"]) == 3
    assert outcome.reported is not None
    assert outcome.reported["env"]["KMP_BLOCKTIME"] == "1"
    assert outcome.returncode == 0
    assert "FINAL throughput=" in outcome.tail


def test_a_crash_is_failed_with_its_traceback_in_the_tail() -> None:
    outcome = go(launch("--behaviour", "crash"))
    assert outcome.status is Status.FAILED
    assert outcome.reason == "exited with status 1"
    assert "ZeroDivisionError" in outcome.tail
    assert "about to fail" in outcome.tail


def test_a_hang_is_stopped_at_the_timeout() -> None:
    start = time.monotonic()
    outcome = go(launch("--behaviour", "hang"), timeout=2.0)
    assert outcome.status is Status.TIMEOUT
    assert "2 s timeout" in outcome.reason
    assert "hanging now" in outcome.tail
    # stopped at the timeout, not at the end of the hour-long hang (a minute of slack for a
    # slow or busy machine)
    assert 2.0 <= outcome.seconds and time.monotonic() - start < 60


def test_garbage_output_is_no_metric_with_the_tail_kept() -> None:
    outcome = go(launch("--behaviour", "garbage"))
    assert outcome.status is Status.NO_METRIC
    assert "no 'throughput' metric" in outcome.reason
    tail = outcome.tail.splitlines()
    assert len(tail) == 10 and tail[-1].endswith("garbage line 49 ###")


def test_a_metric_then_a_crash_is_still_a_failure() -> None:
    outcome = go(launch("--behaviour", "crash-after-metric"))
    assert outcome.status is Status.FAILED and outcome.reason == "exited with status 7"
    assert "throughput" in outcome.metrics  # kept for diagnosis, not used as a result


def test_a_program_that_cannot_start() -> None:
    outcome = go(Launch(argv=("/nonexistent/program", "--x")))
    assert outcome.status is Status.FAILED
    assert "cannot start '/nonexistent/program'" in outcome.reason


def test_a_line_without_newline_is_cut_and_kept() -> None:
    outcome = go(launch("--behaviour", "huge-line"))
    assert outcome.status is Status.FAILED
    assert max(len(line) for line in outcome.tail.splitlines()) <= 4000


def test_the_whole_process_group_is_killed() -> None:
    outcome = go(launch("--behaviour", "grandchild"), timeout=2.0)
    assert outcome.status is Status.TIMEOUT
    time.sleep(0.5)
    leftover = os.popen("pgrep -f 'import time; time.sleep(3600)'").read().split()
    assert leftover == []


def test_on_reading_can_stop_the_run_as_pruned() -> None:
    seen: list[Reading] = []

    def prune_at_second(reading: Reading) -> Decision:
        seen.append(reading)
        return Decision.PRUNE if reading.interval == 2 else Decision.CONTINUE

    # a two-minute run, stopped after its second interval
    outcome = go(launch("--intervals", "600", "--interval-seconds", "0.2"),
                 on_reading=prune_at_second)
    assert outcome.status is Status.PRUNED
    assert "interval 2" in outcome.reason
    assert [r.interval for r in seen] == [1, 2]
    assert outcome.seconds < 60  # stopped, not run to its end


def test_on_reading_can_end_a_run_that_is_precise_enough() -> None:
    def enough_at_third(reading: Reading) -> Decision:
        return Decision.ENOUGH if reading.interval == 3 else Decision.CONTINUE

    outcome = go(launch("--intervals", "600", "--interval-seconds", "0.2"),
                 on_reading=enough_at_third)
    assert outcome.ok and outcome.reason == "stable after 3 intervals"
    values = outcome.intervals["throughput"]
    assert len(values) == 3
    assert outcome.metrics["throughput"] == pytest.approx(sum(values) / 3)
    assert outcome.seconds < 60 and len(outcome.reading_times) == 3  # stopped early


def test_affinity_fallback_pins_the_child() -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    outcome = go(launch(affinity=(cpu,)))
    assert outcome.ok and outcome.reported is not None
    assert outcome.reported["affinity"] == [cpu]


def test_environment_is_exactly_base_plus_launch() -> None:
    outcome = go(launch(env={"FAKE_KNOB": "7"}))
    assert outcome.reported is not None
    assert outcome.reported["env"] == {"FAKE_KNOB": "7"}


def test_on_tick_heartbeats_while_the_child_runs() -> None:
    ticks: list[float] = []
    outcome = go(launch("--sleep", "1.2"),
                 hooks=RunHooks(on_tick=lambda: ticks.append(time.monotonic()),
                                tick_seconds=0.3))
    assert outcome.ok
    assert len(ticks) >= 2
