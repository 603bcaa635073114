"""optuna-dashboard (a maintained library) for deep dives, mounted under ``/optuna``.

Its standalone bundle assumes it sits at the root of the site (``/static/bundle.js``,
``/api/...``, router prefix ``/dashboard``). Rather than give it the root, the mount rewrites
those three literals on the way out: the HTML's script path, the bundle's API base and its
router prefix, and the redirect to ``/dashboard``. Each literal is checked to occur: a future
optuna-dashboard that changed them fails with a clear message instead of a blank page.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from a2wsgi import WSGIMiddleware
from optuna.storages import BaseStorage

PREFIX = "/optuna"
REWRITES = {
    "/static/bundle.js": [(b'null!=e?e:"")}handleResponse',
                           b'null!=e?e:"' + PREFIX.encode() + b'")}handleResponse'),
                          (b'url_prefix:"/dashboard"',
                           b'url_prefix:"' + PREFIX.encode() + b'/dashboard"')],
    "html": [(b'src="/static/bundle.js"', b'src="' + PREFIX.encode() + b'/static/bundle.js"')],
}


class OptunaDashboard:
    """An ASGI app: optuna-dashboard's WSGI app, prefixed under ``/optuna``."""

    def __init__(self, storage: BaseStorage) -> None:
        import optuna_dashboard

        self.inner: Any = WSGIMiddleware(optuna_dashboard.wsgi(storage))

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        path = scope.get("path", "")
        inner_path = path[len(PREFIX):] if path.startswith(PREFIX) else path
        # identity, not gzip: the rewrites need the text (and the app insists on the header)
        scope = {**scope, "path": inner_path or "/", "root_path": "",
                 "raw_path": (inner_path or "/").encode(),
                 "headers": [(k, v) for k, v in scope["headers"]
                             if k.lower() != b"accept-encoding"]
                 + [(b"accept-encoding", b"identity")]}
        rewrites = REWRITES.get(inner_path) or (
            REWRITES["html"] if inner_path.startswith("/dashboard") else None)
        start: dict[str, Any] = {}
        body = bytearray()

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for key, value in message.get("headers", []):
                    if key.lower() == b"location" and value.startswith(b"/"):
                        value = PREFIX.encode() + value
                    if rewrites and key.lower() == b"content-length":
                        continue
                    headers.append((key, value))
                start.update({**message, "headers": headers})
                if not rewrites:
                    await send(start)
            elif message["type"] == "http.response.body":
                if not rewrites:
                    await send(message)
                    return
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    data = bytes(body)
                    if start.get("status") == 200:
                        for old, new in rewrites:
                            if old not in data:
                                raise RuntimeError(f"optuna-dashboard changed: {old!r} not "
                                                   f"found in {inner_path}; update "
                                                   "tuner/dashboard/optuna_mount.py")
                            data = data.replace(old, new)
                    start["headers"].append((b"content-length", str(len(data)).encode()))
                    await send(start)
                    await send({"type": "http.response.body", "body": data})

        await self.inner(scope, receive, capture)
