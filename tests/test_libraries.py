"""Which runtime a process loaded: the classification of mapped shared objects, the bounded
read of /proc/PID/maps, and real processes through the real runner (a fresh process, a shell
that starts the real program, a fork of the fork server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuner.execution import libraries
from tuner.execution.backend import ProcessBackend
from tuner.execution.launch import Launch
from tuner.execution.libraries import (
    by_role,
    classify,
    classify_maps,
    describe,
    describe_build,
    read_group,
    read_mapped,
    summary_line,
)
from tuner.execution.outcome import loaded
from tuner.execution.runner import RunRequest, Status, run
from tuner.spec.models import ParserSpec
from tuner.testing.backends import BackendSupplier, flat_surface, replay_launch

PYTHON = sys.executable
ENV = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
TCMALLOC = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")

#: Files mapped by a torch process, Intel's TensorFlow build, Debian, NumPy.
MAPPED = (
    "/venv/lib/python3.11/site-packages/torch/lib/libgomp-a34b3233.so.1",
    "/venv/lib/python3.11/site-packages/_solib_local/_U_S_Stensorflow_Stsl_Smkl_Cmkl_Ulibs"
    "_Ulinux___Uexternal_Sllvm_Uopenmp/libiomp5.so",
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10",
    "/usr/lib/llvm-16/lib/libomp.so.5",
    "/venv/lib/python3.11/site-packages/tensorflow/python/framework/_proto_comparators.so",
    "/venv/lib/python3.11/site-packages/tensorflow/compiler/mlir/lite/python/"
    "_pywrap_converter_api.so",
    "/venv/lib/libiompstubs5.so",
    "/opt/llvm/lib/libomptarget.so.16",
    "/venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so",
    "/opt/oneapi/lib/libtbb.so.12",
    "/opt/oneapi/lib/libtbbmalloc.so.2",
    "/venv/lib/python3.11/site-packages/torch/lib/libgomp-a34b3233.so.1",
)
#: Those files as lines of /proc/PID/maps, with an anonymous mapping and the stack.
MAPS = "\n".join(
    ["7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0"]
    + [f"7f1c2b{i:02d}0000-7f1c2b{i:02d}4000 r-xp 00000000 fe:00 13110{i:02d}    {path}"
       for i, path in enumerate(MAPPED)]
    + ["7ffd1c9e6000-7ffd1ca07000 rw-p 00000000 00:00 0                          [stack]"])


@pytest.mark.parametrize(("path", "name"), [
    ("/venv/lib/python3.11/site-packages/torch/lib/libgomp-a34b3233.so.1", "libgomp"),
    ("/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0", "libgomp"),
    ("/venv/lib/python3.11/site-packages/torch/lib/libgomp.so.1", "libgomp"),
    ("/tmp/itf/lib/python3.11/site-packages/_solib_local/_U_S_Stensorflow_Stsl_Smkl_Cmkl_Ulibs"
     "_Ulinux___Uexternal_Sllvm_Uopenmp/libiomp5.so", "libiomp5"),
    ("/venv/lib/libiomp5.so", "libiomp5"),
    ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "jemalloc"),
    ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "tcmalloc"),
    ("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4", "tcmalloc"),
    ("/usr/lib/llvm-16/lib/libomp.so.5", "libomp"),
    ("/opt/oneapi/lib/libtbb.so.12", "libtbb"),
    ("/x/numpy.libs/libscipy_openblas64_-32a4b2a6.so", "openblas"),
    ("/x/numpy.libs/libopenblas64_p-r0-2f7c42d4.3.18.so", "openblas"),
    ("/x/libgomp-a34b3233.so.1 (deleted)", "libgomp"),
    # paths with 'omp' (or 'tbb', 'malloc') in them that are not a runtime
    ("/x/tensorflow/python/framework/_proto_comparators.so", None),
    ("/x/tensorflow/compiler/mlir/lite/python/_pywrap_converter_api.so", None),
    ("/x/llvm_openmp/libfoo.so", None),
    ("/venv/lib/libiompstubs5.so", None),
    ("/opt/llvm/lib/libomptarget.so.16", None),
    ("/opt/oneapi/lib/libtbbmalloc.so.2", None),
    ("/x/libgompx.so", None),
    ("/x/libomp.py", None),
])
def test_a_mapped_file_is_named_by_its_file_name(path: str, name: str | None) -> None:
    assert classify(path) == name


def test_maps_lines_give_each_runtime_once_in_order() -> None:
    assert classify_maps(MAPS) == ("libgomp", "libiomp5", "libomp", "libtbb", "openblas",
                                   "jemalloc", "tcmalloc")
    assert classify_maps("7f-7f r-xp 0 fe:00 1 /lib/x86_64-linux-gnu/libc.so.6\n") == ()


def test_roles_and_the_lines_for_people() -> None:
    assert by_role(["libgomp", "jemalloc"]) == {
        "openmp": ("libgomp",), "threading": (), "blas": (), "allocator": ("jemalloc",)}
    assert by_role([])["allocator"] == ("default",)
    assert describe(["libiomp5"]) == ("openmp libiomp5; threading none; blas none; "
                                      "allocator default")
    assert describe(None) == "unknown"
    build = {"framework": "torch", "version": "2.13.0", "parallel_backend": "OpenMP",
             "openmp": "a long\nmulti-line text " * 10}
    assert describe_build(build) == "torch 2.13.0 parallel_backend OpenMP"
    assert summary_line(["jemalloc", "libgomp"], build) == (
        "libgomp, jemalloc; build: torch 2.13.0 parallel_backend OpenMP")
    assert summary_line([], None) == "no OpenMP/TBB/BLAS library, allocator default"
    assert summary_line(["tcmalloc"], None) == "no OpenMP/TBB/BLAS library, tcmalloc"
    assert summary_line(None, None) == "libraries unknown"


def test_the_read_is_bounded_and_a_gone_process_is_unknown() -> None:
    here = read_mapped(os.getpid())
    assert here is not None  # this process: readable
    assert read_mapped(os.getpid(), limit=200) is None  # cut: absence cannot be told
    child = subprocess.Popen([PYTHON, "-c", "pass"])
    child.wait()
    assert read_mapped(child.pid) is None  # reaped: no such process
    assert read_group(child.pid) is None
    zombie = subprocess.Popen([PYTHON, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # exited but not reaped: a zombie has no maps
        with open(f"/proc/{zombie.pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    assert read_mapped(zombie.pid) is None
    zombie.wait()
    assert read_mapped(0) is None
    assert read_mapped(-5) is None


# -- real processes through the real runner ---------------------------------------------

LOADS = """\
import ctypes, sys, time
for name in sys.argv[1:]:
    ctypes.CDLL(name)
print('SETTINGS {"build": {"framework": "none", "version": "1"}}', flush=True)
for i in (1, 2):
    time.sleep(0.05)
    print(f"METRIC throughput=10 unit=items/s interval={i}", flush=True)
print("FINAL throughput=10 unit=items/s", flush=True)
"""


def request(argv: tuple[str, ...], env: dict[str, str] | None = None, *,
            parser: dict[str, str] | None = None) -> RunRequest:
    spec = ParserSpec(**parser) if parser else ParserSpec(preset="protocol")
    return RunRequest(launch=Launch(argv=argv, env=env or {}), metric="throughput",
                      timeout=30.0, base_env=ENV, parser_spec=spec, kill_grace=1.0)


def test_a_python_child_that_loads_libgomp_is_seen_with_its_build() -> None:
    outcome = run(request((PYTHON, "-c", LOADS, "libgomp.so.1")))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.libraries is not None and "libgomp" in outcome.libraries
    assert "jemalloc" not in outcome.libraries
    assert outcome.build == {"framework": "none", "version": "1"}
    assert outcome.to_dict()["libraries"] == list(outcome.libraries)


@pytest.mark.skipif(not JEMALLOC.exists() or not TCMALLOC.exists(),
                    reason="Debian's libjemalloc2 and libtcmalloc-minimal4 are not installed")
def test_a_preloaded_allocator_is_seen() -> None:
    outcome = run(request((PYTHON, "-c", LOADS), {"LD_PRELOAD": str(JEMALLOC)}))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.libraries is not None
    assert "jemalloc" in outcome.libraries and "libgomp" not in outcome.libraries
    outcome = run(request((PYTHON, "-c", LOADS), {"LD_PRELOAD": str(TCMALLOC)}))
    assert outcome.libraries is not None and "tcmalloc" in outcome.libraries


def test_a_shell_that_runs_the_real_program_shows_the_programs_libraries(
        tmp_path: Path) -> None:
    program = tmp_path / "loads.py"
    program.write_text(LOADS)
    script = f"{PYTHON} {program} libgomp.so.1; exit $?"
    outcome = run(request(("sh", "-c", script)))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.libraries is not None and "libgomp" in outcome.libraries


LAST_LINE_ONLY = """\
import ctypes, sys, time
ctypes.CDLL("libgomp.so.1")
time.sleep(0.3)
print("total items/sec: 42.0", flush=True)
time.sleep(float(sys.argv[1]))
"""


def test_a_program_whose_only_output_is_its_last_line_is_caught_or_honestly_unknown() -> None:
    """The only reading is the last line (a regex parser): the runner reads the maps when
    that line arrives. A program that lingers a moment after it is caught; one that exits at
    once may be gone before the read, and is then unknown (None), never "nothing mapped"."""
    regex = {"regex": r"total items/sec: (?P<throughput>[0-9.]+)"}
    lingers = run(request((PYTHON, "-c", LAST_LINE_ONLY, "0.5"), parser=regex))
    assert lingers.status is Status.OK, lingers.reason
    assert lingers.libraries is not None and "libgomp" in lingers.libraries
    for _ in range(3):
        quick = run(request((PYTHON, "-c", LAST_LINE_ONLY, "0"), parser=regex))
        assert quick.status is Status.OK, quick.reason
        assert quick.libraries is None or "libgomp" in quick.libraries


def test_the_workloads_own_report_is_the_fallback_when_the_maps_are_unknown() -> None:
    reported = {"libraries": ["libiomp5", "jemalloc", "not-a-runtime"],
                "build": {"framework": "tensorflow", "version": "2.14.0",
                          "onednn_threading": "openmp"}}
    assert loaded(None, reported) == {"libraries": ("libiomp5", "jemalloc"),
                                      "build": reported["build"]}
    assert loaded(("libgomp",), reported)["libraries"] == ("libgomp",)  # the maps win
    assert loaded(None, None) == {"libraries": None, "build": None}
    assert loaded(None, {"libraries": "libgomp", "build": "x"}) == {"libraries": None,
                                                                    "build": None}


def test_a_fork_of_the_fork_server_is_read_by_its_pid(tmp_path: Path) -> None:
    with BackendSupplier("fork") as backend:
        assert not isinstance(backend, ProcessBackend)
        surface = tmp_path / "flat.json"
        flat_surface().save(surface)
        lnch = replay_launch(surface, time_scale=0.1)
        outcome = backend.run(RunRequest(launch=lnch, metric="throughput", timeout=30.0,
                                         base_env=ENV, kill_grace=1.0), None)
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.libraries is not None  # the forked child's own maps were read


def test_the_sampler_keeps_the_last_read_that_succeeded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[tuple[str, ...] | None] = [(), ("libgomp",), None]
    monkeypatch.setattr(libraries, "read_group", lambda pid: answers.pop(0))
    sampler = libraries.LibrarySampler(1, every=3600.0, min_gap=0.0)
    sampler.poke()  # not due yet: no read
    assert sampler.reads == 0 and sampler.libraries is None
    sampler.poke(force=True)
    assert sampler.libraries == ()
    sampler.poke(force=True)
    assert sampler.libraries == ("libgomp",)  # loaded lazily: the later read replaces
    sampler.poke(force=True)
    assert sampler.libraries == ("libgomp",)  # gone: the last good read stays
    assert sampler.reads == 3
