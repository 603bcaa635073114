"""Starting points for a user outside the repository: ``tuner init`` (a study file for this
host, a command, or a shipped example), and a built-in workload whose framework is not
installed named with the extra that installs it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FAKE_WORKLOAD, PYTHON, ROOT, make_sys_tree
from tuner.errors import SpecError
from tuner.host import Host, Tools, probe_topology
from tuner.space import fit_to
from tuner.space.starter import CommandStart, builtin_study, command_study
from tuner.spec import load_file, parse_text
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.examples import example_names, example_text


def tuner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def installed(framework: str) -> bool:
    return importlib.util.find_spec(framework) is not None


@pytest.mark.parametrize("workload", sorted(BUILTINS))
def test_a_study_for_each_builtin_fits_this_host(workload: str, local_host: Host) -> None:
    builtin = BUILTINS[workload]
    if builtin.needs_framework({}) and not installed(builtin.runtime):
        pytest.skip(f"{builtin.runtime} is not installed here")
    text = builtin_study(workload, local_host)
    loaded = parse_text(text, "init.yaml", fit=fit_to(local_host))  # raises if it did not fit
    study = loaded.studies[0]
    assert study.workload.builtin == workload
    assert len(study.knobs) >= 2
    assert all(len(line) <= 100 for line in text.splitlines())


def test_on_a_two_socket_server_the_study_binds_cores_and_memory(xeon: Host,
                                                                 xeon_no_numactl: Host) -> None:
    """The fake 2-socket Xeon: thread pools, core binding and memory placement; without
    numactl, memory binding is left out with numactl's reason in the file's header."""
    text = builtin_study("resnet", xeon)
    knobs = yaml.safe_load(text)["knobs"]
    assert {"intra_op", "inter_op", "physcpubind", "membind"} <= set(knobs)
    parse_text(text, "init.yaml", fit=fit_to(xeon))
    without = builtin_study("resnet", xeon_no_numactl)
    assert "membind" not in yaml.safe_load(without)["knobs"]
    header = without.split("\nname:", 1)[0]
    assert "membind" in header and "numactl" in header
    parse_text(without, "init.yaml", fit=fit_to(xeon_no_numactl))


def test_a_long_cpu_model_name_wraps_in_the_header(tmp_path: Path) -> None:
    """The header names the host's CPU model; a long one (a VM's model string, an EPYC's)
    wraps instead of making a line the repository's own checks would refuse."""
    model = "AMD EPYC 9654 96-Core Processor with a hypervisor's long suffix (family 25)"
    root = make_sys_tree(tmp_path / "epyc", sockets=2, cores_per_socket=4, threads_per_core=1,
                         model=model)
    host = Host(topology=probe_topology(root), tools=Tools(numactl=None, taskset=None))
    text = builtin_study("proxy", host)
    assert all(len(line) <= 100 for line in text.splitlines())
    header = " ".join(line.lstrip("# ") for line in text.split("\nname:", 1)[0].splitlines())
    assert model in header and "8 cores, 2 NUMA node(s)" in header
    parse_text(text, "init.yaml", fit=fit_to(host))


def test_a_command_study_runs_as_written(tmp_path: Path) -> None:
    """``tuner init --command`` for a program that takes ``--threads={threads}``: the file
    validates, and ``tuner tune`` runs it (two search trials) with the values reaching the
    program."""
    made = tuner("init", "-o", "study.yaml", "--name", "fake", "--command", PYTHON,
                 FAKE_WORKLOAD, "--threads={threads}", "--intervals", "2", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    data = yaml.safe_load((tmp_path / "study.yaml").read_text())
    assert data["workload"]["command"][-3:] == ["--threads={threads}", "--intervals", "2"]
    assert data["knobs"]["threads"]["high"] == __import__("os").cpu_count()
    assert data["workload"]["parser"] == "protocol"
    checked = tuner("validate", "study.yaml", cwd=tmp_path)
    assert checked.returncode == 0 and "study fake is valid" in checked.stdout, checked.stderr
    storage = f"sqlite:///{tmp_path / 'init.db'}"
    ran = tuner("tune", "study.yaml", "--trials", "4", "--no-confirm", "--quiet", "--storage",
                storage, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    import optuna

    from tuner.store.attributes import REPORTED, ROLE

    study = optuna.load_study(study_name="fake", storage=storage)
    # every trial ran to its end (a search trial may be pruned: it ran, and was slower)
    assert len(study.trials) == 4
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert all(t.state.name == "COMPLETE" for t in study.trials if ROLE.get(t) != "search")
    search = [t for t in study.trials if ROLE.get(t) == "search"]
    assert search and all(REPORTED.get(t)["threads"] == t.params["threads"] for t in search)
    again = tuner("init", "-o", "study.yaml", "--workload", "proxy", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr and "--force" in again.stderr


def test_command_parsers_and_runtime(local_host: Host) -> None:
    regex = r"events per second:\s+(?P<throughput>[0-9.]+)"
    text = command_study(CommandStart(argv=("sysbench", "cpu", "run"), parser={"regex": regex},
                                      runtime="openmp"), local_host, name="sb")
    spec = parse_text(text, "init.yaml", fit=fit_to(local_host)).studies[0]
    assert spec.workload.parser is not None and spec.workload.parser.regex == regex
    assert spec.workload.runtime == "openmp" and "OMP_NUM_THREADS" in spec.knobs
    assert "threads" not in spec.knobs  # no {threads} placeholder in the command
    text = command_study(CommandStart(argv=("prog",), parser={"json": "qps"}, metric="qps"),
                         local_host)
    spec = parse_text(text, "init.yaml", fit=fit_to(local_host)).studies[0]
    assert spec.objective.metric == "qps"


def _study_data(text: str, name: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    studies = data.get("studies", [data])
    return next(s for s in studies if s["name"] == name)


@pytest.mark.parametrize("name", sorted(example_names()))
def test_each_example_comes_out_whole_with_its_comments(name: str, tmp_path: Path) -> None:
    original = example_names()[name].read_text()
    text = example_text(name)
    assert _study_data(text, name) == _study_data(original, name)
    body = [line.strip() for line in original.splitlines()
            if line.strip().startswith("#")]
    comments = [line.strip() for line in text.splitlines() if line.strip().startswith("#")]
    assert set(comments) - set(body) <= {comments[0]}  # only the added first line is new
    if name == "resnet-system-small":
        assert any("journaled" in line for line in comments)


def test_the_examples_are_the_repository_files_and_ship_in_the_package() -> None:
    assert (ROOT / "studies.yaml").resolve() == example_names()["resnet-small"]
    assert (ROOT / "examples" / "sysbench.yaml").resolve() == example_names()["sysbench-cpu"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"spec/example_studies/*.yaml"' in pyproject


def test_init_example_and_list(tmp_path: Path) -> None:
    listed = tuner("init", "--list-examples", cwd=tmp_path)
    assert listed.returncode == 0 and "sysbench-cpu" in listed.stdout
    made = tuner("init", "--example", "proxy-numpy", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert load_file(tmp_path / "study.yaml").studies[0].name == "proxy-numpy"
    bad = tuner("init", "--example", "nope", "-o", "-", cwd=tmp_path)
    assert bad.returncode == 1 and "no example study named 'nope'" in bad.stderr
    assert "proxy-numpy" in bad.stderr


def _without_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name.split(".")[0] == "tensorflow" else real(name, package)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_a_builtin_without_its_framework_names_the_extra(
        monkeypatch: pytest.MonkeyPatch, local_host: Host, write_study: Any) -> None:
    """Tuner's own Python without TensorFlow (a light install): a TensorFlow built-in is
    refused at its line with the extra to install; the NumPy proxy and the replay still
    fit; ``tuner init`` starts from the proxy."""
    _without_tensorflow(monkeypatch)
    path = write_study("name: r\nworkload:\n  builtin: resnet\nknobs:\n  intra_op: auto\n")
    with pytest.raises(SpecError) as caught:
        load_file(path, fit=fit_to(local_host))
    message = str(caught.value)
    assert f"{path}:3: workload.builtin: built-in workload resnet needs tensorflow" in message
    assert "pip install 'tuner[tensorflow]'" in message
    proxy = write_study("name: p\nworkload: {builtin: proxy}\nknobs:\n  intra_op: auto\n")
    load_file(proxy, fit=fit_to(local_host))
    tf_proxy = write_study("name: p\nworkload: {builtin: proxy, params: {backend: tensorflow}}"
                           "\nknobs:\n  intra_op: auto\n")
    with pytest.raises(SpecError, match="proxy needs tensorflow"):
        load_file(tf_proxy, fit=fit_to(local_host))
    from tuner.cli import main

    assert main(["init", "-o", str(path.parent / "init.yaml")]) == 0
    assert yaml.safe_load((path.parent / "init.yaml").read_text())["workload"]["builtin"] \
        == "proxy"
    from tuner.space.host_report import builtin_workloads

    rows = builtin_workloads()
    assert rows["resnet"]["available"] is False and "tuner[tensorflow]" in rows["resnet"]["reason"]
    assert rows["proxy"]["available"] and rows["replay"]["available"]


def test_a_runtime_without_the_framework_is_named(write_study: Any, local_host: Host) -> None:
    """A real interpreter without TensorFlow (Debian's own python3) as workload.python."""
    system_python = Path("/usr/bin/python3")
    probe = subprocess.run([str(system_python), "-c", "import tensorflow"], capture_output=True)
    if not system_python.exists() or probe.returncode == 0:
        pytest.skip("no system python3 without TensorFlow here")
    path = write_study(f"name: r\nworkload:\n  builtin: resnet\n  python: {system_python}\n"
                       "knobs:\n  intra_op: auto\n")
    with pytest.raises(SpecError) as caught:
        load_file(path, fit=fit_to(local_host))
    assert (f"resnet needs tensorflow, which workload.python {system_python} does not have; "
            "install tensorflow-cpu there") in str(caught.value)
