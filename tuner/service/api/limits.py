"""Bounded input for the service: a cap on request bodies, and study files validated off the
event loop under a time limit, so that no request can stall the others (``/healthz``
included).

- ``BodyLimit`` (ASGI middleware) answers 413 to a body above ``max_body_bytes``: at once
  when ``Content-Length`` says so, else as soon as the chunks received pass the cap. Before
  answering, the rest of the refused body is read and dropped (up to ``DRAIN_BYTES`` or
  ``DRAIN_SECONDS``): a server that answers and closes while the client is still sending
  resets the connection, and the client may never see the 413.
- ``parse_submission`` decodes and validates a study file in a child process, at most
  ``PARALLEL_PARSES`` at a time, and kills it after ``PARSE_SECONDS``. The limits of
  ``tuner.spec.limits`` keep the YAML and the models cheap; fitting a study to a host can
  still cost seconds for large placement spaces (``tuner.space.constraints`` counts every
  combination), and a thread could not be stopped: a child process can. The event loop only
  waits, so ``/healthz`` keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.forkserver
import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from multiprocessing.connection import Connection
from typing import Any

from fastapi import HTTPException, status

from tuner.errors import SpecError, SpecIssue
from tuner.space import fit_to
from tuner.spec import StudyFileText, decode_text, parse_text
from tuner.spec.limits import PARSE_SECONDS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Bytes of a refused body read and dropped before the connection is closed, and the seconds
#: spent on it at most.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0
PARALLEL_PARSES = 2


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE,
                         f"the request body is larger than {limit} bytes (the service's "
                         "max_body_bytes); a study file is a few kilobytes")


class BodyLimit:
    """ASGI middleware: 413 for a request body larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            await _answer(send, status.HTTP_400_BAD_REQUEST,
                          "the Content-Length header is not a number")
            return
        if declared > self.max_bytes:
            # a client that waits for 100-continue sends nothing; past the drain bound the
            # connection is closed on it anyway
            if declared <= DRAIN_BYTES and not _expects_continue(scope):
                await _drain(receive)
            await _answer(send, status.HTTP_413_CONTENT_TOO_LARGE,
                          BodyTooLarge(self.max_bytes).detail)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await _drain(receive)
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # raised where no exception handler answers it
            if started:
                raise
            await _answer(send, exc.status_code, exc.detail)


def _content_length(scope: Scope) -> int | None:
    """The declared length (-1 when there is none); None when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else None
    return -1


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue"
               for name, value in scope.get("headers", ()))


async def _answer(send: Send, code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    """Read what the client still sends (bounded), so that it sees the answer."""
    deadline = time.monotonic() + DRAIN_SECONDS
    dropped = 0
    while dropped < DRAIN_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), timeout=left)
        except (TimeoutError, OSError, RuntimeError):
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        dropped += len(message.get("body", b""))


_slots = threading.BoundedSemaphore(PARALLEL_PARSES)
#: Children fork from a server that has imported the validator once (a few milliseconds per
#: submission); killing a child ends its work, which a thread could not.
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["tuner.service.api.limits", "tuner.space.search_space",
                                 "tuner.host"])
_server_lock = threading.Lock()
_server_started = False


def start_validator_server() -> None:
    """Start the fork server with none of tuner's secrets in its environment: it is a fresh
    process whose ``/proc/PID/environ`` a trial (same user) could read, and the validating
    children fork from it. The secrets leave ``os.environ`` only while it starts, so the
    service starts it before any thread of its own (the embedded worker reads
    ``os.environ`` for every trial); a later call returns at once."""
    global _server_started
    with _server_lock:
        if _server_started:
            return
        from tuner.settings import child_base_environment

        kept = child_base_environment(())
        hidden = {k: v for k, v in os.environ.items() if k not in kept}
        for name in hidden:
            del os.environ[name]
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            os.environ.update(hidden)
        _server_started = True


async def parse_submission(raw: bytes, *, source: str, host: Any,
                           timeout: float = PARSE_SECONDS) -> StudyFileText:
    """Decode and validate a submitted study file in a child process, killed after
    ``timeout``. Raises ``SpecError`` (422) for a file that does not validate in time,
    ``HTTPException`` 503 when the validation slots stay busy for ``timeout``."""
    deadline = time.monotonic() + timeout
    while not _slots.acquire(blocking=False):
        if time.monotonic() >= deadline:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                "the service is busy validating other submissions; retry",
                                headers={"Retry-After": "5"})
        await asyncio.sleep(0.05)
    try:
        kind, value = await _in_child(raw, source, host, deadline)
    finally:
        _slots.release()
    if kind == "ok":
        assert isinstance(value, StudyFileText)
        return value
    if kind == "invalid":
        raise SpecError(list(value))
    message = (f"validation took longer than {timeout:g} s and was stopped; a study file is "
               "far simpler") if kind == "timeout" else (
        f"tuner failed to validate this file ({value}); please report it")
    raise SpecError([SpecIssue(source=source, line=None, field="", message=message)])


async def _in_child(raw: bytes, source: str, host: Any, deadline: float) -> tuple[str, Any]:
    """("ok", the file) | ("invalid", issues) | ("timeout", None) | ("crash", why)."""
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(target=_validate, args=(sender, raw, source, host), daemon=True,
                             name="tuner-validate")
    try:
        await asyncio.to_thread(start_validator_server)
        await asyncio.to_thread(child.start)
        sender.close()
        left = max(0.0, deadline - time.monotonic())
        if not await asyncio.to_thread(receiver.poll, left):
            return "timeout", None
        try:
            answer: tuple[str, Any] = receiver.recv()
        except EOFError:
            return "crash", f"the validating process ended with status {child.exitcode}"
        return answer
    finally:
        if child.is_alive():
            child.kill()
        if child.pid is not None:
            await asyncio.to_thread(child.join, 5)
        receiver.close()


def _validate(sender: Connection, raw: bytes, source: str, host: Any) -> None:
    """In the child: validate and send the answer."""
    try:
        answer: tuple[str, Any] = ("ok", parse_text(decode_text(raw, source), source,
                                                    fit=fit_to(host) if host else None))
    except SpecError as exc:
        answer = ("invalid", exc.issues)
    except Exception as exc:  # a bug of tuner's, reported as such
        answer = ("crash", f"{type(exc).__name__}: {str(exc)[:200]}")
    sender.send(answer)
    sender.close()
