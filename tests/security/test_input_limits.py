"""Bounded input: against a real ``tuner serve``, an alias bomb, a 20 MB body (declared or
chunked), recursive aliases and deep nesting each get a 4xx within 2 s while ``/healthz``
keeps answering; the body cap is a setting; study files are validated off the event loop
under a time limit."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from tests.security.conftest import WRITE, YAML
from tests.serving import TOKENS, start_server, stop_servers
from tuner.errors import SpecError
from tuner.host import generic_host
from tuner.service.api import limits
from tuner.service.app import create_app
from tuner.settings import Settings
from tuner.spec import StudyFileText

#: The issue's bound for a refusal, and for one ``/healthz`` answer meanwhile.
REFUSED_WITHIN = 2.0
HEALTHZ_WITHIN = 1.0
MB = 1_000_000


def alias_bomb(levels: int = 9, fan: int = 9) -> str:
    lines = ["name: bomb", "workload: {builtin: resnet}",
             f"a0: &a0 [{', '.join(['lol'] * fan)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


BAD_BODIES: dict[str, tuple[Callable[[], bytes | Iterator[bytes]], int, str]] = {
    "alias bomb": (lambda: alias_bomb().encode(), 422, "alias bomb"),
    "20 MB file": (lambda: b"name: big\ndescription: " + b"x" * (20 * MB), 413, "larger than"),
    "20 MB chunked": (lambda: (b"y" * 65536 for _ in range(20 * MB // 65536)), 413,
                      "larger than"),
    "recursive alias": (lambda: b"name: r\nworkload: {builtin: resnet}\nknobs: &k {a: *k}\n",
                        422, "recursive alias"),
    "deep flow nesting": (lambda: b"name: d\ndescription: " + b"[" * 200_000 + b"]" * 200_000,
                          422, "nesting depth"),
    "deep block nesting": (lambda: b"name: d\nknobs:\n" + b"".join(
        b" " * i + b"- \n" for i in range(1, 60)), 422, "nested more than 32 levels"),
    "15k choices": (lambda: b"name: c\nworkload: {builtin: resnet}\nknobs:\n  KMP_BLOCKTIME: ["
                    + b", ".join(str(i).encode() for i in range(15_000)) + b"]\n", 422,
                    "at most 4096 items"),
    "UTF-16": (lambda: "name: u\nworkload: {builtin: resnet}\n".encode("utf-16"), 422,
               "UTF-16"),
}


@dataclass
class HealthPoller:
    """Polls ``/healthz`` in a thread; records how long each answer took."""

    url: str
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                start = time.monotonic()
                try:
                    response = client.get(self.url + "/healthz")
                    if response.status_code != 200:
                        self.failures.append(f"status {response.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.times.append(time.monotonic() - start)
                self.stop.wait(0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Tokens set, the default body cap, an embedded database, no worker (nothing runs):
    the URL and the server's pid."""
    workdir = tmp_path_factory.mktemp("limits")
    procs: list[subprocess.Popen[bytes]] = []
    url = start_server(procs, workdir, "--no-worker", env={
        **TOKENS, "TUNER_DEFAULT_STORAGE": f"sqlite:///{workdir / 'tuner.db'}",
        "TUNER_LOCK_DIR": str(workdir / "locks")})
    yield url, procs[0].pid
    stop_servers(procs)


@pytest.fixture(scope="module")
def server(served: tuple[str, int]) -> str:
    return served[0]


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_body_is_refused_fast_while_healthz_answers(server: str, name: str) -> None:
    make, code, text = BAD_BODIES[name]
    poller = HealthPoller(server)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    time.sleep(0.2)  # polling before the request starts
    try:
        start = time.monotonic()
        response = httpx.post(server + "/studies", content=make(), headers={**YAML, **WRITE},
                              timeout=30)
        took = time.monotonic() - start
        time.sleep(0.2)
    finally:
        poller.stop.set()
        thread.join(10)
    assert response.status_code == code, response.text[:500]
    assert text in response.text
    assert took < REFUSED_WITHIN, f"refused after {took:.2f} s"
    if code == 422:
        issues = response.json()["issues"]
        assert all(isinstance(i["line"], int) and i["line"] >= 1 for i in issues), issues
    assert not poller.failures, poller.failures
    assert len(poller.times) >= 3, "healthz was polled during the request"
    assert max(poller.times) < HEALTHZ_WITHIN, f"healthz took {max(poller.times):.2f} s"


def test_an_ordinary_study_is_still_accepted(server: str) -> None:
    body = ("name: ordinary\nworkload: {builtin: resnet, params: {preset: small}}\n"
            "knobs: {intra_op: [1, 2], KMP_BLOCKTIME: [0, 1]}\n")
    response = httpx.post(server + "/studies", content=body, headers={**YAML, **WRITE},
                          timeout=30)
    assert response.status_code == 201, response.text
    assert [s["name"] for s in response.json()] == ["ordinary"]


def test_aliases_within_the_limits_still_work(server: str) -> None:
    body = ("studies:\n"
            "- name: shared-a\n  workload: &w {builtin: resnet, params: {preset: small}}\n"
            "  knobs: &k {intra_op: [1, 2]}\n"
            "- name: shared-b\n  workload: *w\n  knobs: *k\n")
    response = httpx.post(server + "/studies", content=body, headers={**YAML, **WRITE},
                          timeout=30)
    assert response.status_code == 201, response.text


@pytest.fixture
def small_cap(tmp_path: Path) -> TestClient:
    settings = Settings(api_token="write-token", max_body_bytes=2000)
    return TestClient(create_app(settings=settings,
                                 storage_url=f"sqlite:///{tmp_path / 'cap.db'}"))


def test_the_cap_is_a_setting(small_cap: TestClient) -> None:
    study = "name: capped\nworkload: {builtin: resnet}\n"
    under = study + "description: " + "x" * 1500 + "\n"
    over = study + "description: " + "x" * 2500 + "\n"
    assert small_cap.post("/studies", content=under, headers={**YAML, **WRITE}
                          ).status_code == 201
    response = small_cap.post("/studies", content=over, headers={**YAML, **WRITE})
    assert response.status_code == 413
    assert "larger than 2000 bytes" in response.json()["detail"]


def test_a_chunked_body_is_counted(small_cap: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"name: chunked\nworkload: {builtin: resnet}\ndescription: "
        for _ in range(10):
            yield b"x" * 500

    response = small_cap.post("/studies", content=chunks(), headers={**YAML, **WRITE})
    assert response.status_code == 413


def test_a_bad_content_length_is_400(small_cap: TestClient) -> None:
    response = small_cap.post("/studies", content=b"name: x\n",
                              headers={**YAML, **WRITE, "Content-Length": "12abc"})
    assert response.status_code == 400


#: Expensive to fit to the generic host (every placement combination is counted): seconds.
SLOW_TO_FIT = ("studies:\n" + "".join(
    f"- name: slow{i}\n  workload: {{builtin: resnet}}\n  knobs:\n"
    f"    instances: [{', '.join(str(n) for n in range(1, 513))}]\n"
    "    physcpubind: auto\n    intra_op: auto\n    OMP_NUM_THREADS: auto\n    membind: auto\n"
    for i in range(10))).encode()


def test_validation_is_stopped_at_the_time_limit_off_the_event_loop() -> None:
    """A file that takes long to validate is stopped at the limit (its process killed, so
    its slot is free at once), and the event loop runs meanwhile."""
    async def scenario() -> tuple[int, float, SpecError | None, StudyFileText]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await limits.parse_submission(b"name: warm\nworkload: {builtin: resnet}\n",
                                      source="<warm-up>", host=generic_host())
        start = time.monotonic()
        error = None
        try:
            await limits.parse_submission(SLOW_TO_FIT, source="<request>",
                                          host=generic_host(), timeout=1.0)
        except SpecError as exc:
            error = exc
        took = time.monotonic() - start
        task.cancel()
        quick = [limits.parse_submission(b"name: next\nworkload: {builtin: resnet}\n",
                                         source="<next>", host=generic_host(), timeout=5)
                 for _ in range(limits.PARALLEL_PARSES)]
        after = await asyncio.gather(*quick)
        return ticks, took, error, after[0]

    ticks, took, error, after = asyncio.run(scenario())
    assert error is not None and "took longer than 1 s and was stopped" in str(error)
    assert took < 3.0
    assert ticks >= 20, "the event loop ran while the file was validated"
    assert after.studies[0].name == "next", "both slots are free again"


def test_busy_parse_slots_answer_503() -> None:
    held = [limits._slots.acquire(blocking=False) for _ in range(limits.PARALLEL_PARSES)]
    try:
        assert all(held)
        with pytest.raises(HTTPException) as caught:
            asyncio.run(limits.parse_submission(b"name: x\n", source="<request>", host=None,
                                                timeout=0.2))
        assert caught.value.status_code == 503
    finally:
        for _ in held:
            limits._slots.release()


def test_the_validating_processes_hold_no_token(served: tuple[str, int]) -> None:
    """The fork server the validations fork from starts without tuner's secrets: a trial
    (same user) could read its /proc/PID/environ."""
    url, pid = served
    httpx.post(url + "/studies", content=b"name: x\n", headers={**YAML, **WRITE}, timeout=30)
    environs = []
    for proc in Path("/proc").iterdir():
        try:
            parent = next(line for line in (proc / "status").read_text().splitlines()
                          if line.startswith("PPid:"))
            if int(parent.split()[1]) == pid and b"forkserver" in (proc / "cmdline"
                                                                   ).read_bytes():
                environs.append((proc / "environ").read_bytes())
        except (OSError, ValueError, StopIteration):
            continue
    assert environs, "the fork server runs"
    for environ in environs:
        assert b"PATH=" in environ
        for token in TOKENS.values():
            assert token.encode() not in environ
