"""One authority for every route: each path the app serves (its routes, enumerated from the
app itself, the dashboard, static files, optuna-dashboard's pages and API) refuses requests
without a valid token when reads are protected, and refuses writes always; the login cookie
reads but never writes; security headers on every page."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from tests.security.conftest import ADMIN, READ, WRITE, WRONG, YAML, Server
from tests.serving import start_server, stop_servers
from tuner.service.app import create_app
from tuner.settings import Settings

PUBLIC = {"/healthz", "/ui/login"}
#: Paths inside the mounts, with the methods each answers.
MOUNTED = {
    "/ui/static": [("GET", "/ui/static/style.css"), ("GET", "/ui/static/app.js")],
    "/optuna": [
        ("GET", "/optuna/"), ("GET", "/optuna/dashboard"), ("GET", "/optuna/static/bundle.js"),
        ("GET", "/optuna/api/meta"), ("GET", "/optuna/api/studies"),
        ("GET", "/optuna/api/studies/1"), ("GET", "/optuna/api/studies/1/param_importances"),
        ("GET", "/optuna/csv/1"),
        ("DELETE", "/optuna/api/studies/1"), ("POST", "/optuna/api/studies"),
        ("POST", "/optuna/api/studies/1/rename"), ("PUT", "/optuna/api/studies/1/note"),
        ("PUT", "/optuna/api/studies/1/1/note"), ("POST", "/optuna/api/trials/1/tell"),
        ("POST", "/optuna/api/trials/1/user-attrs"), ("POST", "/optuna/api/artifacts/1"),
        ("POST", "/optuna/api/artifacts/1/1"), ("PUT", "/optuna/api/studies/1/note"),
        ("POST", "/optuna/incompatible-rdb-schema"), ("DELETE", "//optuna/api/studies/1"),
    ],
}
#: Bodies that would succeed, so that a refusal is the token's doing, not the body's.
BODIES = {
    "/optuna/api/studies": {"study_name": "created", "directions": ["maximize"]},
    "/optuna/api/studies/1/rename": {"study_name": "renamed"},
    "/optuna/api/trials/1/tell": {"state": "Complete", "values": [1e300]},
    "/optuna/api/trials/1/user-attrs": {"user_attrs": {"launch": "rm -rf /"}},
}


def _walk(routes: list[Any]) -> Iterator[Any]:
    """Every route, routers included into the app opened up (FastAPI keeps them as a
    wrapper with the router as ``original_router``)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def every_request(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, path parameters filled in, plus the paths
    inside its mounts; checked to cover every operation of the OpenAPI schema."""
    app = create_app(settings=Settings(api_token="x"),
                     storage_url=f"sqlite:///{tmp_path / 'routes.db'}")
    found: list[tuple[str, str]] = []
    for route in _walk(app.routes):
        if isinstance(route, Mount):
            assert route.path in MOUNTED, f"a new mount {route.path}: add its paths here"
            found += MOUNTED[route.path]
        elif isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "finished", route.path)
            found += [(m, path) for m in sorted(route.methods or ()) if m != "HEAD"]
    documented = {(method.upper(), re.sub(r"\{[^}]+\}", "finished", path))
                  for path, operations in app.openapi()["paths"].items()
                  for method in operations}
    assert documented <= set(found), documented - set(found)
    paths = {p for _, p in found}
    assert {"/studies", "/studies/finished", "/ui", "/ui/studies/finished", "/docs",
            "/openapi.json", "/optuna/api/studies", "/ui/login"} <= paths, paths
    return found


@pytest.fixture(scope="module")
def requests(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    return every_request(tmp_path_factory.mktemp("routes"))


def send(server: Server, method: str, path: str, headers: dict[str, str],
         cookies: dict[str, str] | None = None) -> httpx.Response:
    body = BODIES.get(path)
    extra = {"json": body} if body is not None else (
        {"content": "name: x\nworkload: {builtin: resnet}\n", "headers": {**headers, **YAML}}
        if method == "POST" else {})
    extra.setdefault("headers", headers)
    return httpx.request(method, server.url + path, timeout=30, cookies=cookies,
                         follow_redirects=False, **extra)  # type: ignore[arg-type]


def is_write(method: str) -> bool:
    return method not in ("GET", "HEAD")


def test_every_route_refuses_without_a_valid_token(guarded: Server,
                                                   requests: list[tuple[str, str]]) -> None:
    for method, path in requests:
        if path in PUBLIC:
            continue
        missing = send(guarded, method, path, {})
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = send(guarded, method, path, WRONG)
        assert wrong.status_code == 403, (method, path, wrong.text)
    assert guarded.get("/studies/finished", headers=READ).status_code == 200  # still there


def test_writes_are_refused_without_the_right_token_even_with_open_reads(
        open_reads: Server, requests: list[tuple[str, str]]) -> None:
    for method, path in requests:
        if not is_write(method) or path in PUBLIC:
            continue
        for headers, expected in (({}, 401), (WRONG, 403), (READ, 403)):
            response = send(open_reads, method, path, headers)
            assert response.status_code == expected, (method, path, headers, response.text)
        if path.startswith("/optuna"):  # optuna-dashboard's writes need the admin token
            response = send(open_reads, method, path, WRITE)
            assert response.status_code == 403, (method, path, response.text)
            assert "admin token" in response.json()["detail"]
    # nothing was changed: the study, its trial 0 and its best are what they were
    assert open_reads.get("/studies/finished").json()["status"] != "stopped"
    studies = open_reads.get("/optuna/api/studies").json()["study_summaries"]
    assert [s["study_name"] for s in studies] == ["finished"]
    trial = open_reads.get("/studies/finished/trials").json()["items"][0]
    assert trial["value"] != 1e300 and trial["launch"] != "rm -rf /"


def test_reads_are_open_by_default_and_the_login_page_always(open_reads: Server,
                                                             guarded: Server) -> None:
    for path in ("/studies", "/ui", "/ui/studies/finished", "/optuna/api/studies",
                 "/ui/static/style.css"):
        assert open_reads.get(path).status_code == 200, path
    for server in (open_reads, guarded):
        assert server.get("/healthz").status_code == 200
        assert server.get("/ui/login").status_code == 200


def test_any_token_reads_protected_routes(guarded: Server,
                                          requests: list[tuple[str, str]]) -> None:
    for method, path in requests:
        if is_write(method):
            continue
        for headers in (READ, WRITE, ADMIN):
            response = send(guarded, method, path, headers)
            assert response.status_code in (200, 302, 307), (path, headers, response.text)


def test_the_login_checks_the_token_and_its_cookie_only_reads(guarded: Server) -> None:
    wrong = httpx.post(guarded.url + "/ui/login", data={"token": "guess"},
                       follow_redirects=False, timeout=30)
    assert wrong.status_code == 403 and "tuner_token" not in wrong.cookies
    good = httpx.post(guarded.url + "/ui/login", data={"token": "admin-token"},
                      follow_redirects=False, timeout=30)
    assert good.status_code == 303
    cookie = good.cookies["tuner_token"]
    assert cookie and "admin-token" not in cookie  # the cookie is not the token
    assert "httponly" in good.headers["set-cookie"].lower()
    assert "samesite=strict" in good.headers["set-cookie"].lower()
    jar = {"tuner_token": cookie}
    for path in ("/ui", "/ui/studies/finished", "/studies", "/optuna/api/studies"):
        assert send(guarded, "GET", path, {}, jar).status_code == 200, path
    for method, path in (("POST", "/studies"), ("POST", "/studies/finished/stop"),
                         ("DELETE", "/studies/finished"), ("DELETE", "/optuna/api/studies/1"),
                         ("POST", "/optuna/api/trials/1/tell")):
        response = send(guarded, method, path, {}, jar)
        assert response.status_code == 401, (method, path, response.text)
        assert "cookie serves reads only" in response.json()["detail"]
    # the raw token in the cookie (an older client) is not a session either
    assert send(guarded, "GET", "/ui", {}, {"tuner_token": "admin-token"}).status_code == 403
    assert guarded.get("/studies/finished", headers=READ).status_code == 200


def test_security_headers_on_every_page(guarded: Server) -> None:
    pages = {"/ui": "script-src 'self'", "/ui/studies/finished": "script-src 'self'",
             "/optuna/dashboard": "frame-ancestors 'none'", "/docs": "cdn.jsdelivr.net"}
    for path, needle in pages.items():
        response = guarded.get(path, headers=READ)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        policy = response.headers["content-security-policy"]
        assert needle in policy and "frame-ancestors 'none'" in policy, (path, policy)
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0] or \
            path == "/docs", (path, policy)
    refused = guarded.get("/ui")
    assert refused.status_code == 401 and refused.headers["x-frame-options"] == "DENY"
    assert "unsafe-inline" not in guarded.get("/ui", headers=READ).headers[
        "content-security-policy"]  # tuner's own pages: no inline script or style at all


def test_insecure_local_takes_writes_only_from_this_machine(tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        url = start_server(procs, tmp_path, "--insecure-local", "--no-worker", env={
            "TUNER_DEFAULT_STORAGE": f"sqlite:///{tmp_path / 'local.db'}", "TUNER_API_TOKEN": "",
            "TUNER_ADMIN_TOKEN": ""})
        body = "name: local\nworkload: {builtin: resnet}\n"
        rebound = httpx.post(url + "/studies", content=body, timeout=30,
                             headers={**YAML, "Host": "attacker.example:8000"})
        assert rebound.status_code == 403 and "loopback" in rebound.text
        cross_site = httpx.post(url + "/studies", content=body, timeout=30,
                                headers={**YAML, "Origin": "http://attacker.example"})
        assert cross_site.status_code == 403
        assert httpx.get(url + "/studies", timeout=30).json()["total"] == 0
        same = httpx.post(url + "/studies", content=body, timeout=30,
                          headers={**YAML, "Origin": url})
        assert same.status_code == 201, same.text
    finally:
        stop_servers(procs)
