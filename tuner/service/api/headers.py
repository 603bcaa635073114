"""Security headers on every response, and a Content-Security-Policy fitted to each kind of
page the service serves.

- tuner's own pages (``/ui``): scripts and styles from ``/ui/static`` only, no inline
  script or style; the trial chart is inline SVG with presentation attributes only.
- optuna-dashboard (``/optuna``): the policy it sends with its page (inline styles for
  Emotion/MUI and its loading page, ``data:``/``blob:`` images and ``'unsafe-eval'`` for
  Plotly, no inline script, its own API only); where a response already carries a policy,
  ours is added as a second header with the directives it may lack (framing, base, forms):
  a browser enforces both.
- The API docs (``/docs``, ``/redoc``): FastAPI's pages load Swagger UI / ReDoc from
  cdn.jsdelivr.net and start them with an inline script.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

_COMMON = "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
TUNER_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             f"connect-src 'self'; {_COMMON}")
#: optuna-dashboard's own policy (it sends it with its page; Plotly needs 'unsafe-eval'),
#: for its other responses too, plus ours
OPTUNA_CSP = ("default-src 'self'; img-src 'self' data: blob:; frame-src 'self'; "
              "object-src 'none'; connect-src 'self'; style-src 'self' data: 'unsafe-inline'; "
              f"script-src 'self' 'unsafe-eval'; {_COMMON}")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
            "https://fonts.googleapis.com; "
            "font-src 'self' data: https://fonts.gstatic.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            f"worker-src 'self' blob:; connect-src 'self'; {_COMMON}")
ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"no-referrer"))


def policy_for(path: str) -> str:
    if path == "/optuna" or path.startswith("/optuna/"):
        return OPTUNA_CSP
    if path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        return DOCS_CSP
    return TUNER_CSP


class SecurityHeaders:
    """ASGI middleware: nosniff, no framing and no referrer on every response, and a
    Content-Security-Policy (it only matters for HTML, but costs nothing elsewhere)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = policy_for(scope.get("path", "")).encode()

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in ALWAYS if k not in names]
                extra.append((b"content-security-policy",
                              _COMMON.encode() if b"content-security-policy" in names
                              else csp))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
