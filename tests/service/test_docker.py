"""The Docker files, checked without a Docker engine: the compose file's services and
wiring, and that the image installs exactly the project (its pyproject dependencies)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_wires_api_worker_and_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "api", "worker"}
    api, worker = services["api"], services["worker"]
    assert api["command"][0] == "serve" and worker["command"][0] == "worker"
    storage = api["command"][api["command"].index("--storage") + 1]
    assert storage == worker["command"][worker["command"].index("--storage") + 1]
    assert storage.startswith("postgresql://") and "@postgres:5432/" in storage
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "TUNER_API_TOKEN" in api["environment"]
    assert "SYS_NICE" in worker["cap_add"]
    assert api["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / "docker" / api["build"]["context"] / api["build"]["dockerfile"]).exists()


def test_image_installs_the_project_and_numactl() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in dockerfile
    assert "numactl" in dockerfile
    copied = {line.split()[1] for line in dockerfile.splitlines()
              if line.startswith("COPY")}
    assert {"pyproject.toml", "tuner", "workloads"} <= copied
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["tuner"] == "tuner.cli:main"
    python = dockerfile.split("FROM python:", 1)[1].split("-", 1)[0]
    low = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, low.split(".")))
    assert 'ENTRYPOINT ["tuner"]' in dockerfile
