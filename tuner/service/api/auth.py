"""One authentication layer for every path the service serves: the API, the dashboard
(``/ui``), its static files, the API docs and optuna-dashboard under ``/optuna``.

The rules, decided from the method and the path alone, before any route runs:

- ``/healthz`` and the login page (``/ui/login``) are open.
- A read (GET or HEAD) is open unless ``protect_reads`` is set; then it needs one of the
  tokens (read, api or admin), as the bearer header or as the login cookie.
- A write (any other method) needs the bearer header (never the cookie): the api or admin
  token, and for anything under ``/optuna`` (optuna-dashboard's delete, rename, tell,
  notes, attributes, ...) the admin token. Routes may ask for more: a study that can run
  code on the workers needs the admin token (``tuner.service.api.privilege``).
- ``--insecure-local`` without tokens (loopback only) lets writes through without a token,
  but only from a loopback ``Host`` and without a foreign ``Origin`` (no DNS rebinding, no
  cross-site form posts).

The login cookie holds an HMAC of the token, not the token, so a leaked cookie is worth
reads only.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Protocol
from urllib.parse import urlsplit

from tuner.settings import Settings

COOKIE = "tuner_token"
OPTUNA = "/optuna"
PUBLIC = frozenset({"/healthz", "/ui/login"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_COOKIE_CONTEXT = b"tuner read cookie v1"


class Need(enum.Enum):
    NOTHING = "nothing"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


def need_of(method: str, path: str) -> Need:
    """What a request needs, from its method and path."""
    path = re.sub("/{2,}", "/", path)  # however a router might read "//optuna/..."
    if path in PUBLIC:
        return Need.NOTHING
    if method.upper() in SAFE_METHODS:
        return Need.READ
    if path == OPTUNA or path.startswith(OPTUNA + "/"):
        return Need.ADMIN
    return Need.WRITE


def cookie_value(token: str) -> str:
    """What the login cookie holds for ``token``: an HMAC, never the token itself."""
    return hmac.new(token.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def _matches(presented: str, accepted: Iterable[str]) -> bool:
    found = False
    for expected in accepted:  # no early exit: the time taken does not say which matched
        if expected and secrets.compare_digest(presented.encode(), expected.encode()):
            found = True
    return found


def tokens_for(settings: Settings, need: Need) -> tuple[str, ...]:
    if need is Need.ADMIN:
        return (settings.admin_token,)
    if need is Need.WRITE:
        return (settings.api_token, settings.admin_token)
    return (settings.read_token, settings.api_token, settings.admin_token)


def known_token(settings: Settings, token: str) -> bool:
    """Whether ``token`` is one of the service's tokens (read, api or admin)."""
    return _matches(token, tokens_for(settings, Need.READ))


@dataclass(frozen=True)
class Credentials:
    """What a request presented: the bearer header's token, the login cookie, its Host and
    Origin headers."""

    bearer: str | None
    cookie: str | None
    host: str
    origin: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Credentials:
        header = headers.get("authorization", "")
        bearer = (header[7:].strip() or None) if header[:7].lower() == "bearer " else None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no cookie
            jar = SimpleCookie()
        morsel = jar.get(COOKIE)
        return cls(bearer=bearer, cookie=morsel.value if morsel else None,
                   host=headers.get("host", ""), origin=headers.get("origin"))

    @property
    def presented(self) -> bool:
        return self.bearer is not None or self.cookie is not None


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str


def _host_name(host: str) -> str:
    return urlsplit(f"//{host}").hostname or ""


def _foreign_origin(creds: Credentials) -> bool:
    """A browser's cross-site request (or one from a sandboxed ``null`` origin)."""
    if creds.origin is None:
        return False
    return urlsplit(creds.origin).netloc.lower() != creds.host.lower()


def check(settings: Settings, need: Need, creds: Credentials, *,
          insecure_local: bool = False) -> Refusal | None:
    """None when ``creds`` may do what ``need`` says; otherwise why not."""
    if need is Need.NOTHING:
        return None
    if need is Need.READ and not settings.protect_reads:
        return None
    no_tokens = not (settings.api_token or settings.admin_token)
    if need is not Need.READ and insecure_local and no_tokens:
        if _host_name(creds.host) not in LOOPBACK_HOSTS or _foreign_origin(creds):
            return Refusal(403, "--insecure-local takes writes only from this machine "
                                "(a loopback Host, no foreign Origin)")
        return None
    accepted = tokens_for(settings, need)
    if need is Need.READ:
        if creds.bearer is not None:
            ok = _matches(creds.bearer, accepted)
        else:
            ok = creds.cookie is not None and _matches(
                creds.cookie, [cookie_value(t) for t in accepted if t])
    else:
        ok = creds.bearer is not None and _matches(creds.bearer, accepted)
    if ok:
        return None
    which = {Need.READ: "a token", Need.WRITE: "the api or admin token",
             Need.ADMIN: "the admin token"}[need]
    if need is Need.READ:
        if not creds.presented:
            return Refusal(401, "reading needs a bearer token (in a browser: sign in at "
                                "/ui/login)")
        return Refusal(403, "this token may not read studies")
    if creds.bearer is None:
        return Refusal(401, f"a change needs {which} in an `Authorization: Bearer` header "
                            "(the login cookie serves reads only)")
    return Refusal(403, f"this token may not make this change: it needs {which}")


class Guarded(Protocol):
    """What the middleware reads on each request (the app's ``Service``)."""

    settings: Settings
    insecure_local: bool


class AuthMiddleware:
    """The ASGI middleware that applies ``check`` to every HTTP request before routing."""

    def __init__(self, app: Any, *, service: Guarded) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET") if scope["type"] == "http" else "WEBSOCKET"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = check(self.service.settings, need_of(method, scope.get("path", "")),
                        Credentials.from_headers(headers),
                        insecure_local=self.service.insecure_local)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": refusal.detail}).encode()
        extra = [(b"www-authenticate", b"Bearer")] if refusal.status == 401 else []
        await send({"type": "http.response.start", "status": refusal.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})
