"""The container files, checked without a container engine: the compose file against the
Compose Specification's JSON schema and for the faults it once had (PostgreSQL not published
for remote workers, a host lock per container, a worker image nobody builds, no restart
policies, no worker health check), the Dockerfile's two targets, base and non-root user, the
build context (.dockerignore), and the build script. tests/service/test_container_build.py
builds and runs the images for real."""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
import subprocess
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?P<op>:[-?])?(?P<arg>[^}]*)\}")
ENV = {"TUNER_DB_PASSWORD": "s3cret", "TUNER_API_TOKEN": "w", "TUNER_ADMIN_TOKEN": "a"}


class Unset(Exception):
    """A ``${VAR:?message}`` whose variable is not set."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``
    replaced from ``env`` in every string."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise Unset(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return VARIABLE.sub(one, value)


def raw_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def compose(env: Mapping[str, str] = ENV) -> dict[str, Any]:
    """The compose file as Compose reads it with ``env`` set."""
    config: dict[str, Any] = interpolate(raw_compose(), env)
    return config


def instructions(text: str) -> list[str]:
    """A Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            out.append(pending.strip())
            pending = ""
    return out


def stages() -> dict[str, list[str]]:
    """The Dockerfile's stages by name: each its instructions after ``FROM``."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for instruction in instructions((DOCKER / "Dockerfile").read_text()):
        words = instruction.split()
        if words[0] == "FROM":
            current = out.setdefault(words[-1] if "AS" in words else words[1], [words[1]])
        else:
            current.append(instruction)
    return out


def chain(name: str) -> list[str]:
    """Every instruction an image of stage ``name`` is built from, its parents' first."""
    all_stages = stages()
    own = all_stages[name]
    parent = own[0]
    return (chain(parent) if parent in all_stages else []) + own[1:]


def test_compose_file_is_valid_by_the_compose_spec_schema() -> None:
    readme = (SCHEMA.parent / "compose-spec.README").read_text()
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() in readme
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["worker"]["restart_policy"] = "always"  # not a compose key
    broken["services"]["api"]["depends_on"]["postgres"]["condition"] = "service_ready"
    assert len(list(validator.iter_errors(broken))) == 2


def test_compose_wires_api_worker_and_postgres() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "api", "worker"}
    api, worker = services["api"], services["worker"]
    assert api["command"][0] == "serve" and worker["command"][0] == "worker"
    storage = api["command"][api["command"].index("--storage") + 1]
    assert storage == worker["command"][worker["command"].index("--storage") + 1]
    assert storage.startswith("postgresql://") and "@postgres:5432/" in storage
    assert ":" not in storage.split("://")[1].split("@")[0], "the password goes in PGPASSWORD"
    assert api["environment"]["PGPASSWORD"] == worker["environment"]["PGPASSWORD"] == "s3cret"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["environment"]["TUNER_API_TOKEN"] == "w"
    assert "SYS_NICE" in worker["cap_add"]
    for service in (api, worker):
        build = service["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"


@pytest.mark.parametrize("missing", sorted(ENV))
def test_the_secrets_have_no_defaults(missing: str) -> None:
    with pytest.raises(Unset, match=missing):
        compose({k: v for k, v in ENV.items() if k != missing})


def test_postgres_is_published_for_remote_workers_on_a_chosen_address() -> None:
    assert compose()["services"]["postgres"]["ports"] == ["127.0.0.1:5432:5432"]
    opened = compose({**ENV, "TUNER_DB_BIND": "10.0.0.5"})["services"]["postgres"]
    assert opened["ports"] == ["10.0.0.5:5432:5432"]
    assert "TUNER_DB_BIND" in (DOCKER / "README.md").read_text()


def test_scaled_workers_share_the_host_lock() -> None:
    """`--scale worker=3`: every replica mounts the same named volume where its lock (and
    journal) live, and nothing stops a replica from starting (fixed name, host port)."""
    config = compose()
    worker = config["services"]["worker"]
    mounts = dict(volume.split(":", 1) for volume in worker["volumes"])
    by_target = {target: source for source, target in mounts.items()}
    for variable in ("TUNER_LOCK_DIR", "TUNER_STATE_DIR"):
        directory = worker["environment"][variable]
        shared = [t for t in by_target if directory == t or directory.startswith(t + "/")]
        assert shared, f"{variable}={directory} is on no volume"
        assert by_target[shared[0]] in config["volumes"], "a named volume, not a bind mount"
        image_env = " ".join(i for i in chain("tensorflow") if i.startswith("ENV"))
        assert f"{variable}={directory}" in image_env
        made = [i for i in chain("tensorflow") if "install -d -o tuner" in i]
        assert made and directory in made[0], f"{directory}: made, owned by the user"
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.parametrize("target", ["tensorflow", "slim"])
def test_the_worker_builds_the_image_it_runs(target: str) -> None:
    worker = compose({**ENV, "TUNER_WORKER_TARGET": target})["services"]["worker"]
    assert worker["build"]["target"] == target and target in stages()
    assert worker["image"] == f"tuner:{target}"
    assert worker["pull_policy"] == "build"
    api = compose()["services"]["api"]
    assert (api["build"]["target"], api["image"], api["pull_policy"]) == (
        "slim", "tuner:slim", "build")


def test_every_service_restarts_and_checks_its_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert service["restart"] in ("always", "unless-stopped", "on-failure"), name
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and not {"true", "exit 0"} & set(test), name
    worker = services["worker"]
    storage = worker["command"][worker["command"].index("--storage") + 1]
    assert worker["healthcheck"]["test"] == ["CMD", "tuner-healthcheck", "db", storage]
    api_check = services["api"]["healthcheck"]["test"]
    assert api_check[1:3] == ["tuner-healthcheck", "http"]
    assert api_check[3].endswith(":8000/healthz")
    assert worker["depends_on"]["api"]["condition"] == "service_healthy"
    assert any("healthcheck.py /opt/tuner/bin/tuner-healthcheck" in i for i in chain("slim"))


@pytest.mark.parametrize("target", ["slim", "tensorflow"])
def test_images_run_as_a_non_root_user(target: str) -> None:
    users = [i.split()[1] for i in chain(target) if i.startswith("USER")]
    assert users and users[-1] not in ("root", "0")
    assert any(f"useradd --system --uid 10001 --gid {users[-1]}" in i for i in chain(target))
    assert [i for i in chain(target) if i.startswith("ENTRYPOINT")] == ['ENTRYPOINT ["tuner"]']


def test_two_targets_install_the_core_and_tensorflow_on_a_base_argument() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert instructions(text)[0] == "ARG BASE=python:3.11-slim-bookworm"
    assert stages()["system"][0] == "${BASE}"
    slim, tensorflow = " ".join(chain("slim")), " ".join(chain("tensorflow"))
    assert "pip install ." in slim and "[tensorflow]" not in slim
    assert "pip install '.[tensorflow]'" in tensorflow
    for image in (slim, tensorflow):
        assert "python3 -m venv /opt/tuner" in image and "PATH=/opt/tuner/bin:$PATH" in image
        assert "install -y --no-install-recommends numactl" in image
        assert "pip install --no-cache-dir --no-deps /tmp/wheel/*.whl" in image
        assert "COPY --from=wheel /wheel /tmp/wheel" in image
    copied = {i.split()[1] for i in chain("wheel") if i.startswith("COPY")}
    assert {"pyproject.toml", "tuner", "workloads"} <= copied
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["tuner"] == "tuner.cli:main"
    assert project["optional-dependencies"]["tensorflow"]
    python = text.split("BASE=python:", 1)[1].split("-", 1)[0]
    low = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, low.split(".")))


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: the last pattern that matches it or
    one of its parent directories decides, ``!`` re-includes (Docker's rules)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    out = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        bodies = {body, body.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(p, b) for p in prefixes for b in bodies):
            out = not negated
    return out


def test_the_build_context_holds_what_the_images_copy_and_nothing_else() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sources = {i.split()[1] for i in instructions((DOCKER / "Dockerfile").read_text())
               if i.startswith("COPY") and "--from" not in i}
    sources |= {i.split()[2] for i in instructions((DOCKER / "Dockerfile").read_text())
                if i.startswith("COPY --chmod")}
    sources.discard("--chmod=0755")
    needed = sources | {"LICENSE", "README.md", "tuner/cli/__init__.py", "workloads/resnet.py"}
    assert all((ROOT / path).exists() and not ignored(path, patterns) for path in needed), needed
    for path in (".venv/bin/python", ".git/HEAD", "tuner-out/x/best.json", "tuner.db",
                 "tests/conftest.py", ".mypy_cache/x", ".pytest_cache/v", "tuner/__pycache__/a.pyc",
                 "tuner/cli/__pycache__/a.pyc", "tuner.egg-info/PKG-INFO", "docker/compose.yaml",
                 "bench/x.py", "docs/x.md", ".env"):
        assert ignored(path, patterns), path


def test_the_build_script_is_documented_and_lint_clean() -> None:
    script = ROOT / "scripts" / "build-images.sh"
    shellcheck = Path(ROOT / ".venv" / "bin" / "shellcheck")
    if shellcheck.exists():
        lint = subprocess.run([str(shellcheck), str(script)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout
    usage = subprocess.run([str(script)], capture_output=True, text=True, timeout=10)
    assert usage.returncode == 2
    for command in ("build", "base", "run", "stop"):
        assert f"scripts/build-images.sh {command}" in usage.stderr
    assert "buildah bud --isolation=chroot" in usage.stderr
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndocker:\n\tscripts/build-images.sh build\n" in makefile


def test_interpolation_helper_follows_compose() -> None:
    doc = {"a": ["${X:-d}", "${Y}", "${Z:?no}x"], "b": 3}
    assert interpolate(copy.deepcopy(doc), {"Z": "z"}) == {"a": ["d", "", "zx"], "b": 3}
    with pytest.raises(Unset):
        interpolate(doc, {})
