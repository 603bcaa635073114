"""Least privilege for submissions: with the ordinary (api) token a study may only use knobs
that cannot run code; whatever can (commands, custom env knobs off the allow-list, custom
flags on built-ins, files outside the project's data) needs the admin token, and so does
stopping, resuming or deleting such a study."""

from __future__ import annotations

import pytest

from tests.conftest import PYTHON, ROOT
from tests.security.conftest import ADMIN, READ, WRITE, YAML, Server

BUILTIN = "name: {name}\nworkload: {{builtin: resnet}}\nknobs:\n  {knob}\n"


@pytest.mark.parametrize("knob", [
    "preload: {env: LD_PRELOAD, choices: [/tmp/evil.so]}",
    "path: {env: PYTHONPATH, choices: [/tmp/evil]}",
    "bash: {env: BASH_ENV, choices: [/tmp/evil.sh]}",
    "browser: {env: BROWSER, choices: [evil]}",
    "warnings: {env: PYTHONWARNINGS, choices: ['ignore::evil.Warning']}",
    "flags: {env: TF_XLA_FLAGS, choices: ['--xla_dump_to=/tmp/x']}",
    "cflags: {env: CFLAGS, choices: ['-O2']}",
    "tools: {env: OMP_TOOL_LIBRARIES, choices: [/tmp/evil.so]}",
    "cpuinfo: {env: KMP_CPUINFO_FILE, choices: [/etc/passwd]}",
    "quoted: {env: KMP_AFFINITY, choices: ['$(touch /tmp/x)']}",
    "slashed: {env: OMP_PLACES, choices: ['../../etc']}",
    "flag: {flag: --surface, choices: [/etc/passwd]}",
])
def test_the_api_token_cannot_submit_what_runs_code(open_reads: Server, knob: str) -> None:
    body = BUILTIN.format(name="refused", knob=knob)
    refused = open_reads.request("POST", "/studies", content=body, headers={**YAML, **WRITE})
    assert refused.status_code == 403, refused.text
    assert "admin token" in refused.json()["detail"]
    assert open_reads.get("/studies/refused").status_code == 404


def test_files_outside_the_project_data_need_the_admin_token(open_reads: Server) -> None:
    inside = ROOT / "bench" / "surfaces" / "resnet-small.json"
    assert inside.exists()
    for surface in ("/etc/passwd", f"{inside.parent}/../../pyproject.toml",
                    "bench/surfaces/resnet-small.json"):
        body = f"name: replayed\nworkload: {{builtin: replay, params: {{surface: '{surface}'}}}}\n"
        refused = open_reads.request("POST", "/studies", content=body,
                                     headers={**YAML, **WRITE})
        assert refused.status_code == 403, (surface, refused.text)
    body = f"name: replayed\nworkload: {{builtin: replay, params: {{surface: '{inside}'}}}}\n"
    accepted = open_reads.request("POST", "/studies", content=body, headers={**YAML, **WRITE})
    assert accepted.status_code == 201, accepted.text
    assert open_reads.request("DELETE", "/studies/replayed", headers=WRITE).status_code == 204


def test_allow_listed_variables_take_the_api_token(open_reads: Server) -> None:
    knobs = ("bind: {env: OMP_PROC_BIND, choices: [close, spread]}\n"
             "  places: {env: OMP_PLACES, choices: ['{0:2}:2:2', cores]}\n"
             "  mkl: {env: MKL_NUM_THREADS, low: 1, high: 2}\n"
             "  arena: {env: MALLOC_ARENA_MAX, choices: [1, 4]}")
    body = BUILTIN.format(name="allowed", knob=knobs)
    accepted = open_reads.request("POST", "/studies", content=body, headers={**YAML, **WRITE})
    assert accepted.status_code == 201, accepted.text
    # an ordinary study is the api token's to stop, resume and delete
    assert open_reads.request("POST", "/studies/allowed/stop",
                              headers=WRITE).json()["status"] == "stopped"
    assert open_reads.request("POST", "/studies/allowed/resume",
                              headers=WRITE).json()["status"] == "queued"
    assert open_reads.request("DELETE", "/studies/allowed", headers=WRITE).status_code == 204


def test_the_admin_token_may_submit_it_and_alone_manages_it(open_reads: Server) -> None:
    body = BUILTIN.format(name="preloaded", knob="preload: {env: LD_PRELOAD, choices: [x.so]}")
    assert open_reads.request("POST", "/studies", content=body,
                              headers={**YAML, **ADMIN}).status_code == 201
    command = (f"name: commanded\nworkload: {{command: [{PYTHON}, -c, 'print(1)'], "
               "parser: protocol}\n")
    assert open_reads.request("POST", "/studies", content=command,
                              headers={**YAML, **WRITE}).status_code == 403
    assert open_reads.request("POST", "/studies", content=command,
                              headers={**YAML, **ADMIN}).status_code == 201
    for name in ("preloaded", "commanded"):
        for method, path in (("POST", f"/studies/{name}/stop"),
                             ("POST", f"/studies/{name}/resume"),
                             ("DELETE", f"/studies/{name}")):
            refused = open_reads.request(method, path, headers=WRITE)
            assert refused.status_code == 403, (method, path, refused.text)
            assert "admin token" in refused.json()["detail"]
        assert open_reads.request("POST", f"/studies/{name}/stop",
                                  headers=ADMIN).json()["status"] == "stopped"
        assert open_reads.request("DELETE", f"/studies/{name}", headers=ADMIN).status_code == 204
        assert open_reads.get(f"/studies/{name}").status_code == 404


def test_a_custom_knobs_default_is_held_to_the_allow_list_too() -> None:
    """Defence in depth: the default of an allow-listed variable must be a plain value as
    well (fitting the study refuses a default outside the domain, but the allow-list does
    not rest on that)."""
    from tuner.service.api.privilege import admin_reasons
    from tuner.spec.models import StudySpec

    def reasons(default: object) -> list[str]:
        spec = StudySpec.model_validate({
            "name": "d", "workload": {"builtin": "resnet"},
            "knobs": {"places": {"env": "OMP_PLACES", "choices": ["cores"],
                                 "default": default}}})
        return admin_reasons(spec)

    assert reasons("cores") == []
    assert any("$(touch /tmp/x)" in r for r in reasons("$(touch /tmp/x)"))


def test_an_interpreter_named_by_its_path_needs_the_admin_token(open_reads: Server) -> None:
    """``workload.python: /path`` names a program for the workers to run: the admin token;
    a runtime's name (made on the machine by its admin, ``tuner runtime create``) takes the
    api token."""
    surface = ROOT / "bench" / "surfaces" / "resnet-small.json"

    def study(name: str, python: str) -> str:
        return (f"name: {name}\nworkload: {{builtin: replay, python: {python}, "
                f"params: {{surface: '{surface}'}}}}\n")

    by_path = study("interpreted", PYTHON)
    refused = open_reads.request("POST", "/studies", content=by_path,
                                 headers={**YAML, **WRITE})
    assert refused.status_code == 403, refused.text
    assert "admin token" in refused.json()["detail"]
    assert "workload.python" in refused.json()["detail"]
    assert open_reads.get("/studies/interpreted").status_code == 404
    assert open_reads.request("POST", "/studies", content=by_path,
                              headers={**YAML, **ADMIN}).status_code == 201
    named = study("named", "intel-tf")
    accepted = open_reads.request("POST", "/studies", content=named,
                                  headers={**YAML, **WRITE})
    assert accepted.status_code == 201, accepted.text
    assert open_reads.request("DELETE", "/studies/named", headers=WRITE).status_code == 204
    assert open_reads.request("DELETE", "/studies/interpreted",
                              headers=WRITE).status_code == 403
    assert open_reads.request("DELETE", "/studies/interpreted",
                              headers=ADMIN).status_code == 204


def test_a_runtime_the_workers_machine_lacks_is_a_4xx_naming_the_field(
        guarded: Server) -> None:
    """With its worker on board the service resolves ``workload.python`` on its machine:
    an unknown name (or a path that is no interpreter) is a validation error that names
    the field and the runtimes there, never a 500."""
    body = "name: nowhere\nworkload: {builtin: resnet, python: nosuch-runtime}\n"
    refused = guarded.request("POST", "/studies", content=body, headers={**YAML, **WRITE})
    assert refused.status_code == 422, refused.text
    assert "workload.python" in refused.text
    assert "no runtime named 'nosuch-runtime'" in refused.text
    assert "runtimes there:" in refused.text
    body = "name: nowhere\nworkload: {builtin: resnet, python: /nonexistent/bin/python}\n"
    refused = guarded.request("POST", "/studies", content=body, headers={**YAML, **ADMIN})
    assert refused.status_code == 422, refused.text
    assert "workload.python" in refused.text and "does not exist" in refused.text
    assert guarded.get("/studies/nowhere", headers=READ).status_code == 404


def test_a_ci_version_command_needs_the_admin_token(open_reads: Server) -> None:
    """``tuner ci`` runs ``ci.version_command`` to read the workload's version: a program of
    the submitter's choosing, so the api token cannot submit it (nor queue its ci run)."""
    body = ("name: versioned\nworkload: {builtin: resnet}\nknobs: {intra_op: auto}\n"
            "ci: {version_command: [sh, -c, 'touch /tmp/pwned']}\n")
    refused = open_reads.request("POST", "/studies", content=body, headers={**YAML, **WRITE})
    assert refused.status_code == 403, refused.text
    assert "ci.version_command" in refused.json()["detail"]
    accepted = open_reads.request("POST", "/studies", content=body, headers={**YAML, **ADMIN})
    assert accepted.status_code == 201, accepted.text
    assert open_reads.request("POST", "/studies/versioned/ci",
                              headers=WRITE).status_code == 403
    assert open_reads.request("POST", "/studies/versioned/ci",
                              headers=ADMIN).status_code == 202
    assert open_reads.request("DELETE", "/studies/versioned", headers=ADMIN).status_code == 204
