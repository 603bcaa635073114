"""Named Python runtimes (``workload.python``): names and paths checked, the registry, a
real ``python -m venv`` runtime made, probed and used by real workload processes (fresh and
forked), the fingerprint of a study that names one, and the probe of tuner's own
interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from pydantic import ValidationError

from tests.conftest import ROOT
from tuner.cli import main
from tuner.errors import SpecError
from tuner.execution import runtimes
from tuner.execution.backend import ProcessBackend
from tuner.execution.forkserver import ForkServerBackend, import_time_env
from tuner.execution.outcome import Status
from tuner.host import Fingerprint, Host, fingerprint, generic_host
from tuner.settings import get_settings
from tuner.space import fit_to
from tuner.space.search_space import SpaceError, build_space
from tuner.space.workload import base_builder
from tuner.spec import parse_text
from tuner.spec.models import WorkloadSpec
from tuner.study.measure import Measurer
from tuner.testing import study_spec, study_yaml

SURFACE = ROOT / "bench" / "surfaces" / "resnet-small.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runtimes folder holding ``tiny``: a real venv with nothing installed (an empty
    requirements file), made by ``tuner runtime create``."""
    where = tmp_path_factory.mktemp("runtimes")
    empty = where.parent / "empty-requirements.txt"
    empty.write_text("# nothing\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNER_RUNTIMES_DIR", str(where))
        get_settings.cache_clear()
        assert main(["runtime", "create", "tiny", "--requirements", str(empty)]) == 0
    get_settings.cache_clear()
    return where


@pytest.fixture
def use_runtimes(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def use(where: Path) -> None:
        monkeypatch.setenv("TUNER_RUNTIMES_DIR", str(where))
        get_settings.cache_clear()
    yield use
    get_settings.cache_clear()


def replay_study(python: str | None, **knobs: object):  # type: ignore[no-untyped-def]
    workload: dict[str, object] = {
        "builtin": "replay", "params": {"surface": str(SURFACE), "time_scale": 0.0}}
    if python is not None:
        workload["python"] = python
    return study_spec(name="rt", workload=workload, knobs=knobs)


# --- workload.python as written ----------------------------------------------------------


@pytest.mark.parametrize("value", ["intel-tf", "tf_2.14", "A" * 64, "/opt/venv/bin/python"])
def test_a_runtime_name_or_an_absolute_path_validates(value: str) -> None:
    assert WorkloadSpec(builtin="resnet", python=value).python == value


@pytest.mark.parametrize("value", ["a/b", "venv/bin/python", "../x", ".hidden", "..",
                                   "A" * 65, "has space", "/opt/../bin/python", ""])
def test_anything_else_is_refused_naming_the_rule(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WorkloadSpec(builtin="resnet", python=value)
    assert "python" in str(caught.value)
    assert runtimes.check_name(value) is not None or value.startswith("/")


def test_a_command_names_its_interpreter_itself() -> None:
    text = study_yaml(workload={"command": [sys.executable, "-c", "print(1)"],
                                "parser": "protocol", "python": "intel-tf"})
    with pytest.raises(SpecError) as caught:
        parse_text(text, "s.yaml")
    (issue,) = caught.value.issues
    assert issue.field == "workload.python"
    assert "a command names its interpreter itself" in issue.message


# --- resolution on the machine that runs the study ------------------------------------------


def test_an_unknown_runtime_names_the_field_and_the_runtimes_here(
        tiny: Path, use_runtimes, local_host: Host) -> None:  # type: ignore[no-untyped-def]
    use_runtimes(tiny)
    with pytest.raises(SpaceError) as caught:
        build_space(replay_study("nosuch"), local_host)
    ((path, message),) = caught.value.problems
    assert path == ("workload", "python")
    assert "no runtime named 'nosuch'" in message and "runtimes there: tiny" in message
    # through the loader, as `tuner validate` and `tuner tune` read it: the line is named
    text = study_yaml(workload={"builtin": "replay", "python": "nosuch",
                                "params": {"surface": str(SURFACE)}})
    with pytest.raises(SpecError) as loaded:
        parse_text(text, "s.yaml", fit=fit_to(local_host))
    (issue,) = loaded.value.issues
    assert issue.field == "workload.python" and issue.line is not None
    # a generic host (a service whose workers run elsewhere) leaves it to the worker
    assert build_space(replay_study("nosuch"), generic_host()).spec.workload.python == "nosuch"


def test_a_path_must_be_an_executable_file(tmp_path: Path, local_host: Host) -> None:
    plain = tmp_path / "python"
    plain.write_text("not a program")
    for path, why in ((tmp_path / "missing", "does not exist"),
                      (plain, "is not an executable file"),
                      (tmp_path, "is not an executable file")):
        with pytest.raises(SpaceError) as caught:
            build_space(replay_study(str(path)), local_host)
        ((where, message),) = caught.value.problems
        assert where == ("workload", "python") and why in message, message


def test_tuners_own_interpreter_by_its_path_is_not_foreign(local_host: Host) -> None:
    space = build_space(replay_study(sys.executable), local_host)
    assert space.ctx.target.python == sys.executable
    assert space.ctx.target.python_prefix == sys.prefix
    assert "PYTHONPATH" not in space.launch(space.fixed).env


# --- the registry ------------------------------------------------------------------------


def test_create_makes_a_registered_probed_venv(tiny: Path) -> None:
    assert runtimes.names(tiny) == ["tiny"]
    data = runtimes.read_fingerprint(tiny, "tiny")
    assert data["python"] == str(tiny / "tiny" / "bin" / "python")
    probe = data["probe"]
    assert probe["prefix"] == str(tiny / "tiny")
    assert probe["tensorflow"] is None and probe["torch"] is None
    assert probe["python"] == ".".join(map(str, sys.version_info[:3]))


@pytest.mark.slow  # a venv made (ensurepip) and pip run: ~10 s
def test_a_failed_creation_registers_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad-requirements.txt"
    bad.write_text("this is not a requirement !!\n")
    where = tmp_path / "runtimes"
    with pytest.raises(runtimes.RuntimeProblem, match="pip install failed"):
        runtimes.create("broken", runtimes_dir=where, requirements=bad)
    assert runtimes.names(where) == [] and not (where / "broken").exists()
    with pytest.raises(runtimes.RuntimeProblem, match="not a runtime name"):
        runtimes.create("../escape", runtimes_dir=where)


def test_list_show_remove(tmp_path: Path, use_runtimes,  # type: ignore[no-untyped-def]
                          capsys: pytest.CaptureFixture[str]) -> None:
    where = tmp_path / "runtimes"
    for name, tf in (("one", "2.14.0"), ("two", None)):
        (where / name / "bin").mkdir(parents=True)
        (where / f"{name}.json").write_text(json.dumps({
            "name": name, "python": str(where / name / "bin" / "python"),
            "probe": {"python": "3.11.7", "tensorflow": tf, "onednn_threading": "openmp",
                      "libraries": ["libiomp5"] if tf else []}}))
    (where / "half-made").mkdir()  # a creation that was interrupted: no fingerprint
    use_runtimes(where)
    assert main(["runtime", "list"]) == 0
    out = capsys.readouterr().out
    assert "one" in out and "tensorflow 2.14.0 (oneDNN threading openmp)" in out
    assert "libraries libiomp5" in out and "two" in out and "half-made" not in out
    assert main(["runtime", "show", "one"]) == 0
    assert json.loads(capsys.readouterr().out)["probe"]["tensorflow"] == "2.14.0"
    assert main(["runtime", "remove", "one"]) == 0
    assert runtimes.names(where) == ["two"] and not (where / "one").exists()
    assert main(["runtime", "show", "one"]) == 1
    assert "no runtime named 'one'" in capsys.readouterr().err


# --- launching in a runtime ----------------------------------------------------------------


def test_a_foreign_interpreter_gets_only_the_workloads_package(
        tiny: Path, use_runtimes, local_host: Host) -> None:  # type: ignore[no-untyped-def]
    use_runtimes(tiny)
    python = str(tiny / "tiny" / "bin" / "python")
    space = build_space(replay_study("tiny"), local_host)
    assert space.ctx.target.python == python
    assert space.ctx.target.python_prefix == str(tiny / "tiny")
    launch = space.launch(space.fixed)
    assert launch.argv[:3] == (python, "-m", "workloads.replay")
    folder = Path(launch.env["PYTHONPATH"])
    assert sorted(p.name for p in folder.iterdir()) == ["workloads"]
    # tuner's own launches are as they were
    own = base_builder(space.spec.workload).build(local_host)
    assert own.argv[0] == sys.executable and "PYTHONPATH" not in own.env
    # the runtime imports the workloads package, and nothing else of tuner's venv
    code = "import workloads._common\ntry:\n import pydantic\nexcept ImportError:\n print('ok')"
    out = subprocess.run([python, "-c", code], env={**os.environ, **launch.env},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ok"


def test_a_module_named_workloads_beside_the_script_does_not_hide_the_package(
        tmp_path: Path) -> None:
    """bench/workloads.py is such a module: a script in bench/ has it first on sys.path."""
    (tmp_path / "workloads.py").write_text("NOT_THE_PACKAGE = True\n")
    code = ("import workloads, sys\nassert not hasattr(workloads, '__path__')\n"
            "from tuner.execution.runtimes import workloads_package\n"
            "print(workloads_package())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert Path(out.strip()) == ROOT / "workloads"


def test_a_runtime_runs_a_builtin_fresh_and_forked(
        tiny: Path, use_runtimes, local_host: Host) -> None:  # type: ignore[no-untyped-def]
    use_runtimes(tiny)
    python = str(tiny / "tiny" / "bin" / "python")
    space = build_space(replay_study("tiny"), local_host)
    fresh = Measurer(space, get_settings(), ProcessBackend()).run(space.fixed)
    assert fresh.status is Status.OK, fresh.reason + fresh.tail
    fork = ForkServerBackend(preload=())
    try:
        forked = Measurer(space, get_settings(), fork).run(space.fixed)
        assert forked.status is Status.OK, forked.reason + forked.tail
        own = build_space(replay_study(None), local_host)
        assert Measurer(own, get_settings(), fork).run(own.fixed).status is Status.OK
        # one server per interpreter, each started with its interpreter
        servers = {key[0]: server for key, server in fork.servers.items()}
        assert set(servers) == {python, sys.executable}
        assert servers[python].proc.args[0] == python  # type: ignore[index]
    finally:
        fork.close()


def test_import_time_variables_key_the_servers() -> None:
    """A forked child inherits what its server loaded and initialised: the dynamic loader's
    LD_PRELOAD, the OpenMP runtime's variables, the allocators' own all start servers of
    their own, started with those values."""
    for name, value in (("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
                        ("OMP_NUM_THREADS", "1"), ("KMP_AFFINITY", "compact"),
                        ("GOMP_CPU_AFFINITY", "0-1"), ("MALLOC_CONF", "narenas:1"),
                        ("TCMALLOC_RELEASE_RATE", "0"), ("LD_LIBRARY_PATH", "/x")):
        assert import_time_env({name: value, "HOME": "/root"}) == ((name, value),)


def test_a_preloaded_allocator_has_a_server_of_its_own(
        local_host: Host) -> None:
    jemalloc = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    if not jemalloc.exists():
        pytest.skip("Debian's libjemalloc2 is not installed")
    space = build_space(replay_study(None, preload={"env": "LD_PRELOAD",
                                                    "choices": [str(jemalloc)]}), local_host)
    fork = ForkServerBackend(preload=())
    try:
        with_it = Measurer(space, get_settings(), fork).run({"preload": str(jemalloc)})
        without = Measurer(space, get_settings(), fork).run({"preload": "unset"})
        assert with_it.status is Status.OK and without.status is Status.OK
        # two servers; the children fork from the one started with the allocator preloaded
        mapped = {dict(key[2]).get("LD_PRELOAD"): Path(f"/proc/{server.proc.pid}/maps")
                  .read_text() for key, server in fork.servers.items()}
        assert set(mapped) == {str(jemalloc), None}
        assert "libjemalloc" in mapped[str(jemalloc)] and "libjemalloc" not in mapped[None]
    finally:
        fork.close()


# --- the fingerprint ---------------------------------------------------------------------


def test_the_default_runtime_keeps_the_host_class_of_stored_studies() -> None:
    base = dict(cpu_model="Xeon", sockets=2, physical_cores=56, logical_cpus=112,
                numa_nodes=2, threads_per_core=2, kernel="6.1", python="3.11.7",
                tensorflow="2.21.0", onednn="3.7.1", numactl="2.0.16")
    # the class of a study stored before runtimes existed: the same key, the same digest
    import hashlib

    key = ["Xeon", 2, 56, 112, 2, "2.21.0", "3.7.1"]
    stored = f"56c2n-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}"
    assert Fingerprint(**base).host_class == stored  # type: ignore[arg-type]
    named = Fingerprint(**{**base, "runtime": "intel-tf", "tensorflow": "2.14.0",  # type: ignore[arg-type]
                           "onednn_threading": "openmp", "openmp": "libiomp5"})
    assert named.host_class != stored
    assert Fingerprint(**{**base, "runtime": "other", "tensorflow": "2.14.0",  # type: ignore[arg-type]
                          "onednn_threading": "openmp",
                          "openmp": "libiomp5"}).host_class != named.host_class


def test_a_study_in_a_runtime_is_fingerprinted_with_the_runtimes_facts(
        tiny: Path, use_runtimes, local_host: Host) -> None:  # type: ignore[no-untyped-def]
    use_runtimes(tiny)
    settings = get_settings()
    own = runtimes.fingerprint_of(local_host, None, settings=settings)
    assert own == fingerprint(local_host, cache_dir=settings.cache_dir)
    assert own.runtime == ""
    named = runtimes.fingerprint_of(local_host, "tiny", settings=settings)
    assert named.runtime == "tiny" and named.tensorflow == "not installed"
    assert named.onednn == "not installed" and named.openmp == "none"
    assert named.host_class != own.host_class
    assert named.cpu_model == own.cpu_model


@pytest.mark.slow  # 10-25 s (TensorFlow and torch imported); tests/test_ci_upgrade.py probes too
def test_the_probe_of_tuners_own_interpreter() -> None:
    probe = runtimes.probe(sys.executable)
    assert probe["tensorflow"].startswith("2.21") and probe["onednn_threading"] == "threadpool"
    assert probe["torch"].startswith("2.") and probe["torch_parallel_backend"] == "OpenMP"
    assert probe["prefix"] == sys.prefix and probe["numpy"]
    # torch's bundled libgomp and the intel-openmp package's libiomp5 lie in the venv
    assert {"libgomp", "libiomp5"} <= set(probe["libraries"])


def test_a_worker_takes_a_study_measured_in_its_runtime(
        tiny: Path, use_runtimes, local_host: Host,  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    """The host class stored with a study that names a runtime is the runtime's: a worker
    compares it with its own fingerprint in that runtime, and leaves (with the reason) a
    study whose runtime this machine lacks."""
    from tuner.service.api.routes.studies import queue
    from tuner.service.worker import Worker
    from tuner.store.attributes import HOST_CLASS

    use_runtimes(tiny)
    settings = get_settings()
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    worker = Worker(storage_url=storage, host=local_host,
                    fingerprint=runtimes.fingerprint_of(local_host, None, settings=settings),
                    settings=settings)
    in_tiny = runtimes.fingerprint_of(local_host, "tiny", settings=settings).host_class
    for name, python, host_class in (("mine", "tiny", in_tiny),
                                     ("default-class", "tiny", worker.fingerprint.host_class),
                                     ("elsewhere", "absent", in_tiny)):
        spec = replay_study(python).model_copy(update={"name": name})
        queue(worker.storage, spec, "")
        HOST_CLASS.put(optuna.load_study(study_name=name, storage=worker.storage), host_class)
    assert worker.candidates() == ["mine"]
    assert "this worker's is" in worker.skipped["default-class"]
    assert "no runtime named 'absent'" in worker.skipped["elsewhere"]
