"""The OpenMP, PyTorch-pool and preload knobs (issue 12): domains and availability on this
host and on a 2-socket, 56-core SMT Xeon; libraries found or missing (a folder of fake
libraries); LD_PRELOAD composed in run_cpu's order; the controlled environment; the torch
vendor baseline; a real process that maps the preloaded jemalloc and libiomp5; and
``tuner doctor``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tuner.execution.launch import PRELOAD_SLOTS, Launch, LaunchBuilder
from tuner.host import Host, Tools, probe_host, synthetic_topology
from tuner.knobs import (
    CONTROLLED_ENV,
    UNSET,
    ChoiceDomain,
    DomainError,
    IntDomain,
    KnobContext,
    Target,
    catalogue,
)
from tuner.knobs.base import Runtime
from tuner.knobs.openmp import OPENMP_LIBS, gomp_affinity_cpus, place_list_cpus
from tuner.knobs.preload import (
    INTEL_OPENMP,
    JEMALLOC,
    TCMALLOC,
    Allocator,
    OmpRuntime,
    find_library,
    system_lib_dirs,
)
from tuner.knobs.threads import OPENMP_NOTE
from tuner.settings import child_base_environment
from tuner.space.baselines import COMPACT, runtime_recipe, vendor_recipe
from tuner.space.search_space import SearchSpace, build_space
from tuner.spec import parse_text
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import KnobSpec
from tuner.testing.specs import study_yaml

TORCH_BUILTIN = Target(builtin=BUILTINS["torch_resnet"])
TORCH_COMMAND = Target(builtin=None, runtime="torch")
NEW_KNOBS = ("torch_threads", "torch_interop_threads", "OMP_PROC_BIND", "OMP_PLACES",
             "GOMP_CPU_AFFINITY", "OMP_SCHEDULE", "omp_runtime", "allocator")

INTEL_HERE = find_library(INTEL_OPENMP, (os.path.join(sys.prefix, "lib"), *system_lib_dirs()))
JEMALLOC_HERE = find_library(JEMALLOC, system_lib_dirs())
TCMALLOC_HERE = find_library(TCMALLOC, system_lib_dirs())


@pytest.fixture
def smt() -> Host:
    """A synthetic 2-socket, 28-core-per-socket Xeon with SMT (56 cores, 112 CPUs)."""
    return Host(topology=synthetic_topology(sockets=2, cores_per_socket=28, threads_per_core=2),
                tools=Tools(numactl="/usr/bin/numactl", taskset="/usr/bin/taskset"))


def ctx_of(host: Host, target: Target = TORCH_BUILTIN) -> KnobContext:
    return KnobContext(host=host, target=target)


def auto(name: str, ctx: KnobContext) -> Any:
    return catalogue()[name].domain(KnobSpec(auto=True), ctx)


def fake_libraries(folder: Path, *files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).write_bytes(b"\x7fELF fake")
    return folder


# --- PyTorch's pools -------------------------------------------------------------------------


def test_torch_pools_are_flags_of_the_torch_builtins(smt: Host) -> None:
    ctx = ctx_of(smt)
    assert ctx.target.kind_of_runtime == "torch"
    assert auto("torch_threads", ctx) == IntDomain(1, 112)
    assert auto("torch_interop_threads", ctx) == IntDomain(1, 56)
    knobs = catalogue()
    assert knobs["torch_threads"].default_value(ctx) == 56
    assert knobs["torch_interop_threads"].default_value(ctx) == 56
    builder = LaunchBuilder(argv=["python", "-m", "workloads.torch_resnet"])
    knobs["torch_threads"].apply(28, builder, ctx)
    knobs["torch_interop_threads"].apply(2, builder, ctx)
    knobs["torch_interop_threads"].apply(UNSET, builder, ctx)
    assert builder.build(smt).argv[-4:] == ("--threads", "28", "--interop-threads", "2")


def test_torch_pools_default_to_what_torch_picks_here(local_host: Host) -> None:
    """torch 2.13 with no variable set: the intra-op pool is the physical cores it may run
    on, the inter-op pool the machine's physical cores (this VM has no SMT, so both are
    what torch reports)."""
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads(),"
                            " torch.get_num_interop_threads())"],
                           env=child_base_environment(CONTROLLED_ENV), capture_output=True,
                           text=True, timeout=120, check=True)
    intra, interop = map(int, probe.stdout.split())
    knobs = catalogue()
    assert knobs["torch_threads"].default_value(ctx_of(local_host)) == intra
    assert knobs["torch_interop_threads"].default_value(ctx_of(local_host)) == interop


@pytest.mark.parametrize("target", [
    Target(builtin=BUILTINS["resnet"]), TORCH_COMMAND, Target(builtin=None, runtime="openmp")])
def test_torch_pools_are_unavailable_elsewhere(xeon: Host, target: Target) -> None:
    knobs = catalogue()
    for name in ("torch_threads", "torch_interop_threads"):
        reason = knobs[name].availability(ctx_of(xeon, target))
        assert reason is not None
    command = knobs["torch_threads"].availability(ctx_of(xeon, TORCH_COMMAND))
    assert command and "OMP_NUM_THREADS sizes torch's intra-op pool" in command
    tf = knobs["torch_threads"].availability(ctx_of(xeon, Target(builtin=BUILTINS["resnet"])))
    assert tf and "runs on tensorflow" in tf


# --- OpenMP variables ------------------------------------------------------------------------


def test_openmp_auto_domains_follow_the_host(smt: Host, local_host: Host) -> None:
    ctx = ctx_of(smt)
    assert auto("OMP_PROC_BIND", ctx) == ChoiceDomain((UNSET, "close", "spread"))
    assert auto("OMP_PLACES", ctx) == ChoiceDomain((UNSET, "cores", "threads"))
    assert auto("GOMP_CPU_AFFINITY", ctx) == ChoiceDomain((UNSET, "0-55", "0-111"))
    assert auto("OMP_SCHEDULE", ctx) == ChoiceDomain((UNSET, "static", "dynamic"))
    here = ctx_of(local_host)
    topo = local_host.topology
    if topo.threads_per_core == 1:
        assert auto("OMP_PLACES", here).values() == [UNSET, "cores"]
        assert len(auto("GOMP_CPU_AFFINITY", here).values()) == 2
    for name in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "OMP_SCHEDULE"):
        knob = catalogue()[name]
        assert knob.family == "openmp" and knob.needs_library == OPENMP_LIBS
        assert knob.default_value(here) == UNSET
        assert knob.note(here) is None  # the stock-TensorFlow caveat is TensorFlow's
        assert knob.note(ctx_of(smt, Target(builtin=BUILTINS["resnet"]))) == OPENMP_NOTE


def test_kmp_knobs_keep_their_libraries_and_behaviour(xeon: Host) -> None:
    knobs = catalogue()
    assert knobs["OMP_NUM_THREADS"].needs_library == OPENMP_LIBS + ("openblas",)
    for name in ("KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_HW_SUBSET"):
        assert knobs[name].needs_library == ("libiomp5", "libomp")
    assert knobs["KMP_BLOCKTIME"].default_value(ctx_of(xeon)) == 200


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("OMP_PROC_BIND", ["close", "SPREAD", "spread,close", False, True, "primary"],
     ["closest", "true,close", ""]),
    ("OMP_PLACES", ["cores", "threads(4)", "numa_domains", "{0,1},{2,3}", "{0:4},{4:4}",
                    "{0:28:2}", "{110,111}"],
     ["cores(0)", "rows", "{0:4}:2:4", "!{0}", "{112}", "{0},{200}"]),
    ("GOMP_CPU_AFFINITY", ["0-27", "0 2 4", "0-54:2", "56-111", "0,56"],
     ["0-112", "a-b", "5-1", "0-27:0"]),
    ("OMP_SCHEDULE", ["static", "dynamic,4", "guided", "auto", "nonmonotonic:dynamic,2",
                      "STATIC"],
     ["static,0", "auto,4", "fastest", "dynamic,"]),
])
def test_explicit_openmp_values_are_checked_against_grammar_and_host(
        smt: Host, name: str, good: list[Any], bad: list[str]) -> None:
    ctx = ctx_of(smt)
    knob = catalogue()[name]
    domain = knob.domain(KnobSpec(choices=[*good, UNSET]), ctx)
    assert domain.size == len(good) + 1
    for value in bad:
        with pytest.raises(DomainError) as caught:
            knob.domain(KnobSpec(choices=[value]), ctx)
        assert caught.value.field == "choices"


def test_cpu_lists_name_the_cpus_they_hold() -> None:
    assert place_list_cpus("{0:4:2},{1,3}") == [0, 2, 4, 6, 1, 3]
    assert place_list_cpus("cores") is None
    assert gomp_affinity_cpus("0 3 1-2 4-10:3") == [0, 3, 1, 2, 4, 7, 10]
    with pytest.raises(DomainError, match="not online or not allowed"):
        catalogue()["GOMP_CPU_AFFINITY"].domain(
            KnobSpec(choices=["0-200"]), ctx_of(Host(
                topology=synthetic_topology(sockets=1, cores_per_socket=4, threads_per_core=1),
                tools=Tools(numactl=None, taskset=None))))


def test_openmp_variables_are_written_as_given(xeon: Host) -> None:
    builder = LaunchBuilder(argv=["prog"])
    values = {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores", "GOMP_CPU_AFFINITY": "0-27",
              "OMP_SCHEDULE": "static", "KMP_HW_SUBSET": UNSET}
    knobs = catalogue()
    for name, value in values.items():
        knobs[name].apply(value, builder, ctx_of(xeon))
    assert builder.build(xeon).env == {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores",
                                       "GOMP_CPU_AFFINITY": "0-27", "OMP_SCHEDULE": "static"}


# --- preloaded libraries ---------------------------------------------------------------------


def test_libraries_are_found_in_the_runtimes_prefix_then_the_system(tmp_path: Path) -> None:
    prefix = tmp_path / "venv"
    system = fake_libraries(tmp_path / "usr-lib", "libjemalloc.so.2", "libtcmalloc.so.4")
    fake_libraries(prefix / "lib", "libiomp5.so", "libjemalloc.so")
    dirs = (str(prefix / "lib"), str(system))
    assert find_library(INTEL_OPENMP, dirs) == str(prefix / "lib" / "libiomp5.so")
    assert find_library(JEMALLOC, dirs) == str(prefix / "lib" / "libjemalloc.so")
    assert find_library(TCMALLOC, dirs) == str(system / "libtcmalloc.so.4")
    assert find_library(TCMALLOC, (str(prefix / "lib"),)) is None
    blank = fake_libraries(tmp_path / "with blank", "libiomp5.so")
    assert find_library(INTEL_OPENMP, (str(blank),)) is None  # LD_PRELOAD cannot hold it
    if sys.platform.startswith("linux") and os.path.isdir("/usr/lib/x86_64-linux-gnu"):
        assert "/usr/lib/x86_64-linux-gnu" in system_lib_dirs()


def test_missing_libraries_name_what_to_install(tmp_path: Path, xeon: Host) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    target = Target(builtin=BUILTINS["torch_resnet"], python_prefix=str(empty))
    ctx = ctx_of(xeon, target)
    runtime, allocator = OmpRuntime(system_dirs=()), Allocator(system_dirs=())
    assert runtime.availability(ctx) is None  # gnu stays
    assert runtime.domain(KnobSpec(auto=True), ctx) == ChoiceDomain(("gnu",))
    note = runtime.note(ctx) or ""
    assert "Intel's OpenMP runtime (libiomp5.so) not found in" in note
    assert f"{empty}/lib" in note and "pip install intel-openmp into the runtime" in note
    with pytest.raises(DomainError, match="intel: Intel's OpenMP runtime") as caught:
        runtime.domain(KnobSpec(choices=["gnu", "intel"]), ctx)
    assert caught.value.field == "choices"
    assert allocator.domain(KnobSpec(auto=True), ctx) == ChoiceDomain(("default",))
    with pytest.raises(DomainError, match="apt install libjemalloc2"):
        allocator.domain(KnobSpec(choices=["default", "jemalloc"]), ctx)
    with pytest.raises(DomainError, match="apt install libtcmalloc-minimal4"):
        allocator.domain(KnobSpec(choices=["tcmalloc"]), ctx)
    builder = LaunchBuilder(argv=["prog"])
    allocator.apply("jemalloc", builder, ctx)  # gone since the space was built: a note
    launch = builder.build(xeon)
    assert "LD_PRELOAD" not in launch.env and "libjemalloc2" in launch.notes[0]


def test_present_libraries_are_offered_and_preloaded(tmp_path: Path, xeon: Host) -> None:
    prefix = tmp_path / "venv"
    fake_libraries(prefix / "lib", "libiomp5.so")
    system = fake_libraries(tmp_path / "sys", "libjemalloc.so.2", "libtcmalloc_minimal.so.4")
    ctx = ctx_of(xeon, Target(builtin=BUILTINS["torch_resnet"], python_prefix=str(prefix)))
    runtime, allocator = OmpRuntime(system_dirs=(str(system),)), Allocator(
        system_dirs=(str(system),))
    assert runtime.domain(KnobSpec(auto=True), ctx) == ChoiceDomain(("gnu", "intel"))
    assert allocator.domain(KnobSpec(auto=True), ctx) == ChoiceDomain(
        ("default", "jemalloc", "tcmalloc"))
    assert runtime.note(ctx) is None and allocator.note(ctx) is None
    assert runtime.changes_libraries and allocator.changes_libraries
    assert runtime.default_value(ctx) == "gnu" and allocator.default_value(ctx) == "default"
    for first, second in ((runtime, allocator), (allocator, runtime)):
        builder = LaunchBuilder(argv=["prog"], env={"LD_PRELOAD": "/opt/shim.so"})
        for knob in (first, second):
            knob.apply("intel" if knob is runtime else "jemalloc", builder, ctx)
        assert builder.build(xeon).env["LD_PRELOAD"] == ":".join(
            (f"{prefix}/lib/libiomp5.so", f"{system}/libjemalloc.so.2", "/opt/shim.so"))
    builder = LaunchBuilder(argv=["prog"])
    runtime.apply("gnu", builder, ctx)
    allocator.apply("default", builder, ctx)
    assert builder.build(xeon).env == {}


def test_ld_preload_slots_are_fixed_and_checked() -> None:
    assert PRELOAD_SLOTS == ("openmp", "allocator")
    builder = LaunchBuilder(argv=["prog"])
    builder.preload("allocator", "/a/libtcmalloc.so.4")
    builder.preload("openmp", "/b/libiomp5.so")
    builder.preload("allocator", "/a/libjemalloc.so.2")  # replaces
    host = Host(topology=synthetic_topology(sockets=1, cores_per_socket=2, threads_per_core=1),
                tools=Tools(numactl=None, taskset=None))
    launch = builder.build(host)
    assert launch.env == {"LD_PRELOAD": "/b/libiomp5.so:/a/libjemalloc.so.2"}
    assert Launch.from_dict(launch.to_dict()) == launch
    with pytest.raises(ValueError, match="unknown preload slot"):
        builder.preload("tbb", "/x.so")
    with pytest.raises(ValueError, match="cannot hold"):
        builder.preload("openmp", "/my libs/libiomp5.so")


@pytest.mark.parametrize(("runtime", "reason"), [
    ("tensorflow", "TensorFlow's build decides its OpenMP runtime"),
    ("native", "set workload.runtime: openmp")])
def test_omp_runtime_is_for_torch_and_openmp_programs(xeon: Host, runtime: Runtime,
                                                      reason: str) -> None:
    knobs = catalogue()
    assert reason in (knobs["omp_runtime"].availability(
        ctx_of(xeon, Target(builtin=None, runtime=runtime))) or "")
    for ok in (TORCH_BUILTIN, TORCH_COMMAND, Target(builtin=None, runtime="openmp")):
        assert knobs["omp_runtime"].availability(ctx_of(xeon, ok)) is None
    runtimes: tuple[Runtime, ...] = ("tensorflow", "torch", "openmp", "native")
    for every in runtimes:
        assert knobs["allocator"].availability(
            ctx_of(xeon, Target(builtin=None, runtime=every))) is None


def test_a_host_not_known_here_counts_every_library_present(tmp_path: Path) -> None:
    from tuner.host import generic_host

    host = generic_host()
    if getattr(host, "local", True):
        pytest.skip("Host.local is not in this checkout")
    ctx = ctx_of(host, Target(builtin=BUILTINS["torch_resnet"], python_prefix=str(tmp_path)))
    runtime = OmpRuntime(system_dirs=())
    assert runtime.domain(KnobSpec(choices=["intel"]), ctx) == ChoiceDomain(("intel",))


def test_controlled_environment_holds_the_new_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "OMP_SCHEDULE",
                 "LD_PRELOAD", "OMP_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME"):
        assert name in CONTROLLED_ENV
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    monkeypatch.setenv("OMP_PROC_BIND", "spread")
    base = child_base_environment(CONTROLLED_ENV)
    assert "LD_PRELOAD" not in base and "OMP_PROC_BIND" not in base


# --- the torch vendor baseline ---------------------------------------------------------------


def space_of(host: Host, workload: dict[str, Any], knobs: dict[str, Any]) -> SearchSpace:
    text = study_yaml(name="t", workload=workload, knobs=knobs)
    return build_space(parse_text(text, "t.yaml").studies[0], host)


def test_torch_recipe_follows_run_cpu() -> None:
    assert runtime_recipe("torch", cores=28, sockets=2, intel_openmp=True,
                          allocator="tcmalloc") == {
        "torch_threads": 28, "OMP_NUM_THREADS": 28, "omp_runtime": "intel",
        "KMP_AFFINITY": COMPACT, "KMP_BLOCKTIME": 1, "allocator": "tcmalloc"}
    assert runtime_recipe("torch", cores=28, sockets=2) == {
        "torch_threads": 28, "OMP_NUM_THREADS": 28, "OMP_SCHEDULE": "static",
        "OMP_PROC_BIND": "close"}


def test_torch_vendor_baseline_on_the_smt_xeon(smt: Host) -> None:
    ctx = ctx_of(smt)
    recipe = vendor_recipe(ctx, tuned_or_fixed=set())
    assert recipe["torch_threads"] == 28 and recipe["OMP_NUM_THREADS"] == 28
    assert recipe["cpunodebind"] == 0 and recipe["membind"] == 0
    if INTEL_HERE:
        assert recipe["omp_runtime"] == "intel" and recipe["KMP_AFFINITY"] == COMPACT
        assert recipe["KMP_BLOCKTIME"] == 1 and "OMP_PROC_BIND" not in recipe
    expected = "tcmalloc" if TCMALLOC_HERE else "jemalloc" if JEMALLOC_HERE else None
    assert recipe.get("allocator") == expected
    command = vendor_recipe(ctx_of(smt, TORCH_COMMAND), tuned_or_fixed=set())
    assert "torch_threads" not in command and command["OMP_NUM_THREADS"] == 28


def test_torch_vendor_baseline_without_the_libraries_is_gnu_and_glibc(
        smt: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tuner.knobs.preload as preload

    monkeypatch.setattr(preload, "system_lib_dirs", lambda: ())
    ctx = ctx_of(smt, Target(builtin=BUILTINS["torch_resnet"], python_prefix=str(tmp_path)))
    assert vendor_recipe(ctx, tuned_or_fixed=set()) == {
        "torch_threads": 28, "OMP_NUM_THREADS": 28, "OMP_SCHEDULE": "static",
        "OMP_PROC_BIND": "close", "cpunodebind": 0, "membind": 0}


def test_torch_vendor_baseline_here_applies_knobs_the_study_does_not_tune(
        local_host: Host) -> None:
    space = space_of(local_host, {"builtin": "torch_resnet"}, {"OMP_PROC_BIND": "auto"})
    vendor = next(b for b in space.baselines if b.name == "vendor")
    cores = local_host.topology.cores_of_socket(local_host.topology.sockets[0])
    assert vendor.values["torch_threads"] == cores
    launch = space.launch({**vendor.values, **space.fixed})
    assert launch.argv[-2:] == ("--threads", str(cores))
    preloaded = launch.env.get("LD_PRELOAD", "")
    if INTEL_HERE:
        assert preloaded.startswith(INTEL_HERE) and launch.env["KMP_BLOCKTIME"] == "1"
    if TCMALLOC_HERE:
        assert preloaded.endswith(TCMALLOC_HERE)
    assert not [n for n in launch.notes if not n.startswith("membind")]  # no numactl here
    defaults = next(b for b in space.baselines if b.name == "defaults")
    assert "LD_PRELOAD" not in space.launch({**defaults.values, **space.fixed}).env


def test_openmp_recipe_does_not_preload(xeon: Host) -> None:
    recipe = vendor_recipe(ctx_of(xeon, Target(builtin=None, runtime="openmp")),
                           tuned_or_fixed=set())
    assert "omp_runtime" not in recipe and "allocator" not in recipe


# --- real processes --------------------------------------------------------------------------

CHILD = """
import ctypes, sys
names = [line.split()[-1].rsplit("/", 1)[-1] for line in open("/proc/self/maps")
         if len(line.split()) == 6]
jemalloc = any(n.startswith("libjemalloc") for n in names)
iomp = any(n.startswith("libiomp5") for n in names)
kmp = hasattr(ctypes.CDLL(None), "kmp_set_blocktime")  # Intel's runtime in the global scope
print(f"jemalloc={jemalloc} libiomp5={iomp} kmp_global={kmp}")
"""


@pytest.mark.skipif(not (INTEL_HERE and JEMALLOC_HERE),
                    reason="needs intel-openmp in tuner's venv and Debian's libjemalloc2")
def test_a_real_process_maps_the_preloaded_runtime_and_allocator(local_host: Host) -> None:
    ctx = ctx_of(local_host, Target(builtin=None, runtime="openmp"))
    knobs = catalogue()
    builder = LaunchBuilder(argv=[sys.executable, "-c", CHILD])
    knobs["allocator"].apply("jemalloc", builder, ctx)
    knobs["omp_runtime"].apply("intel", builder, ctx)
    launch = builder.build(local_host)
    env = {**child_base_environment(CONTROLLED_ENV), **launch.env}
    done = subprocess.run(launch.command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["jemalloc=True", "libiomp5=True", "kmp_global=True"]
    plain = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           env=child_base_environment(CONTROLLED_ENV), timeout=60)
    assert plain.stdout.split() == ["jemalloc=False", "libiomp5=False", "kmp_global=False"]


def test_doctor_lists_the_new_knobs_with_availability() -> None:
    out = subprocess.run([sys.executable, "-m", "tuner.cli", "doctor"], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    sections = dict(part.split(":\n", 1) for part in out.split("knobs for ")[1:])
    torch = sections["built-in workloads (runtime torch)"]
    for name in NEW_KNOBS:
        assert f"  {name} " in torch
    assert "torch_threads          available" in torch
    assert "omp_runtime            available" in torch
    tf = sections["built-in workloads (runtime tensorflow)"]
    assert "omp_runtime            unavailable: TensorFlow's build" in tf
    assert "torch_threads          unavailable" in tf
    if not INTEL_HERE:
        assert "pip install intel-openmp" in torch


def test_this_hosts_domains_are_sane() -> None:
    host = probe_host()
    ctx = ctx_of(host)
    for name in NEW_KNOBS:
        knob = catalogue()[name]
        if knob.availability(ctx) is None:
            assert knob.domain(KnobSpec(auto=True), ctx).size >= 1
