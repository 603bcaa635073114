"""The knob catalogue: a contract every knob passes, and what each one writes into a launch."""

from __future__ import annotations

from typing import Any

import pytest

from tuner.execution.launch import Launch, LaunchBuilder
from tuner.host import Host, Tools
from tuner.knobs import (
    UNSET,
    DomainError,
    IntDomain,
    KnobContext,
    Target,
    UnknownKnobError,
    catalogue,
    close_knob_names,
    make_knob,
)
from tuner.spec.builtin_workloads import BUILTINS
from tuner.spec.models import KnobSpec

TARGETS = {
    "builtin": Target(builtin=BUILTINS["resnet"]),
    "torch-builtin": Target(builtin=BUILTINS["torch_resnet"]),
    "tf-command": Target(builtin=None, tensorflow=True),
    "other-command": Target(builtin=None, tensorflow=False),
}


def apply(host: Host, target: Target, **values: Any) -> Launch:
    ctx = KnobContext(host=host, target=target)
    builder = LaunchBuilder(argv=["prog"])
    knobs = catalogue()
    for name, value in values.items():
        knobs[name].apply(value, builder, ctx)
    return builder.build(host)


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("host_name", ["xeon", "xeon_no_numactl", "local_host"])
@pytest.mark.parametrize("knob_name", list(catalogue()))
def test_knob_contract(knob_name: str, host_name: str, target_name: str,
                       request: pytest.FixtureRequest) -> None:
    """Every catalogue knob: says whether it applies (and why not), resolves ``auto`` to a
    non-empty domain or refuses clearly, and applies every value of that domain."""
    host: Host = request.getfixturevalue(host_name)
    ctx = KnobContext(host=host, target=TARGETS[target_name])
    knob = catalogue()[knob_name]
    assert knob.summary and knob.family
    reason = knob.availability(ctx)
    assert reason is None or (isinstance(reason, str) and len(reason) > 10)
    if reason is not None:
        return
    try:
        domain = knob.domain(KnobSpec(auto=True), ctx)
    except DomainError as exc:
        assert "give" in str(exc)
        return
    assert domain.size >= 1
    for value in domain.values():
        builder = LaunchBuilder(argv=["prog"])
        knob.apply(value, builder, ctx)
        launch = builder.build(host)
        assert all(isinstance(v, str) for v in launch.env.values())
        assert launch.argv[0] == "prog"
        if launch.prefix:
            assert launch.prefix[0] in ("numactl", "taskset")
    default = knob.default_value(ctx)
    assert default == UNSET or domain.contains(default) or isinstance(default, int)


def test_thread_pools_are_flags_for_builtins_and_env_for_commands(xeon: Host) -> None:
    launch = apply(xeon, TARGETS["builtin"], intra_op=28, inter_op=2)
    assert launch.argv == ("prog", "--intra-op", "28", "--inter-op", "2")
    assert not launch.env
    launch = apply(xeon, TARGETS["tf-command"], intra_op=28, inter_op=2)
    assert launch.env == {"TF_NUM_INTRAOP_THREADS": "28", "TF_NUM_INTEROP_THREADS": "2"}
    assert launch.argv == ("prog",)
    reason = catalogue()["intra_op"].availability(KnobContext(host=xeon,
                                                              target=TARGETS["other-command"]))
    assert reason and "not a TensorFlow program" in reason


def test_openmp_variables_and_unset(xeon: Host) -> None:
    launch = apply(xeon, TARGETS["builtin"], OMP_NUM_THREADS=28, KMP_BLOCKTIME=0,
                   KMP_AFFINITY="granularity=fine,compact,1,0", KMP_HW_SUBSET=UNSET)
    assert launch.env == {"OMP_NUM_THREADS": "28", "KMP_BLOCKTIME": "0",
                          "KMP_AFFINITY": "granularity=fine,compact,1,0"}


def test_first_n_physical_cores_binding(xeon: Host, xeon_no_numactl: Host) -> None:
    assert apply(xeon, TARGETS["builtin"], physcpubind=4).prefix == (
        "numactl", "--physcpubind=0-3")
    assert apply(xeon, TARGETS["builtin"], physcpubind="0-3,56-59").prefix == (
        "numactl", "--physcpubind=0-3,56-59")
    assert apply(xeon_no_numactl, TARGETS["builtin"], physcpubind=4).prefix == (
        "taskset", "-c", "0-3")
    bare = Host(topology=xeon.topology, tools=Tools(numactl=None, taskset=None))
    launch = apply(bare, TARGETS["builtin"], physcpubind=2)
    assert launch.prefix == () and launch.affinity == (0, 1)
    assert launch.shell_line().startswith("taskset -c 0-1 prog")


def test_siblings_option_includes_smt_threads(xeon: Host) -> None:
    knob = make_knob("physcpubind", KnobSpec(auto=True, siblings=True))
    builder = LaunchBuilder(argv=["prog"])
    knob.apply(2, builder, KnobContext(host=xeon, target=TARGETS["builtin"]))
    assert builder.build(xeon).prefix == ("numactl", "--physcpubind=0-1,56-57")


def test_node_binding_and_memory_policy(xeon: Host, xeon_no_numactl: Host) -> None:
    launch = apply(xeon, TARGETS["builtin"], cpunodebind=1, membind=1)
    assert launch.prefix == ("numactl", "--cpunodebind=1", "--membind=1")
    assert apply(xeon, TARGETS["builtin"], membind="interleave").prefix == (
        "numactl", "--interleave=all")
    assert apply(xeon, TARGETS["builtin"], membind="local").prefix == ("numactl", "--localalloc")
    fallback = apply(xeon_no_numactl, TARGETS["builtin"], cpunodebind=1)
    assert fallback.prefix == ("taskset", "-c", "28-55,84-111")
    ctx = KnobContext(host=xeon_no_numactl, target=TARGETS["builtin"])
    reason = catalogue()["membind"].availability(ctx)
    assert reason and "numactl is not installed" in reason
    assert "taskset" in (catalogue()["physcpubind"].note(ctx) or "")


def test_impossible_placements_are_refused(xeon: Host) -> None:
    ctx = KnobContext(host=xeon, target=TARGETS["builtin"])
    knobs = catalogue()
    with pytest.raises(DomainError, match="56 physical cores") as caught:
        knobs["physcpubind"].domain(KnobSpec(low=1, high=57), ctx)
    assert caught.value.field == "high"
    with pytest.raises(DomainError, match="node 4 does not exist"):
        knobs["cpunodebind"].domain(KnobSpec(choices=[0, 4]), ctx)
    with pytest.raises(DomainError, match="not online"):
        knobs["physcpubind"].domain(KnobSpec(choices=["0-3", "110-113"]), ctx)
    assert knobs["physcpubind"].domain(KnobSpec(auto=True), ctx) == IntDomain(1, 56)


def test_auto_domains_follow_the_host(xeon: Host, local_host: Host) -> None:
    for host, cores in ((xeon, 56), (local_host, local_host.topology.physical_cores)):
        ctx = KnobContext(host=host, target=TARGETS["builtin"])
        knobs = catalogue()
        assert knobs["inter_op"].domain(KnobSpec(auto=True), ctx) == IntDomain(1, cores)
        logical = host.topology.logical_cpus
        assert knobs["intra_op"].domain(KnobSpec(auto=True), ctx) == IntDomain(1, logical)
    smt = KnobContext(host=xeon, target=TARGETS["builtin"])
    assert catalogue()["KMP_HW_SUBSET"].domain(KnobSpec(auto=True), smt).values() == [UNSET, "1T"]


def test_yaml_booleans_become_switch_words(xeon: Host) -> None:
    ctx = KnobContext(host=xeon, target=TARGETS["builtin"])
    assert catalogue()["xla"].domain(KnobSpec(choices=[False, True]), ctx).values() == [
        "off", "on"]
    assert catalogue()["TF_ENABLE_ONEDNN_OPTS"].domain(
        KnobSpec(choices=[0, 1]), ctx).values() == ["0", "1"]


def test_custom_env_and_flag_knobs(xeon: Host) -> None:
    ctx = KnobContext(host=xeon, target=TARGETS["other-command"])
    env = make_knob("arena", KnobSpec(env="MALLOC_ARENA_MAX", choices=[1, 2]))
    flag = make_knob("threads", KnobSpec(flag="--threads", low=1, high=8))
    switch = make_knob("verbose", KnobSpec(flag="--verbose", choices=[True, False]))
    builder = LaunchBuilder(argv=["bench"])
    env.apply(2, builder, ctx)
    flag.apply(4, builder, ctx)
    switch.apply(True, builder, ctx)
    launch = builder.build(xeon)
    assert launch.env == {"MALLOC_ARENA_MAX": "2"}
    assert launch.argv == ("bench", "--threads", "4", "--verbose")
    builder = LaunchBuilder(argv=["bench"])
    switch.apply(False, builder, ctx)
    assert builder.build(xeon).argv == ("bench",)
    with pytest.raises(DomainError):
        env.domain(KnobSpec(env="X", auto=True), ctx)


def test_unknown_knob_suggests_close_names() -> None:
    assert close_knob_names("kmp_blocktime") == ["KMP_BLOCKTIME"]
    assert "intra_op" in close_knob_names("intraop")
    with pytest.raises(UnknownKnobError) as caught:
        make_knob("omp_threads", KnobSpec(value=1))
    assert "OMP_NUM_THREADS" in str(caught.value)


def test_shell_line_quotes_everything() -> None:
    launch = Launch(argv=("python", "-m", "w", "--name", "a b;rm -rf /"),
                    env={"KMP_AFFINITY": "granularity=fine,compact,1,0", "X": "it's"},
                    prefix=("numactl", "--physcpubind=0-3"))
    line = launch.shell_line()
    assert line == ("numactl --physcpubind=0-3 env KMP_AFFINITY=granularity=fine,compact,1,0 "
                    "'X=it'\"'\"'s' python -m w --name 'a b;rm -rf /'")
    assert Launch.from_dict(launch.to_dict()) == launch


def test_catalogue_families_and_libraries() -> None:
    """Which runtime library reads each OpenMP knob, and which knobs change what loads
    (tests/test_knobs_openmp.py has the rest of issue 12's knobs)."""
    knobs = catalogue()
    openmp = ("libgomp", "libiomp5", "libomp")
    for name in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "OMP_SCHEDULE"):
        assert knobs[name].family == "openmp" and knobs[name].needs_library == openmp
    # OpenBLAS (NumPy's, in every TensorFlow process) sizes its pool from OMP_NUM_THREADS too
    assert knobs["OMP_NUM_THREADS"].needs_library == openmp + ("openblas",)
    for name in ("KMP_AFFINITY", "KMP_BLOCKTIME", "KMP_HW_SUBSET"):
        assert knobs[name].needs_library == ("libiomp5", "libomp")
    assert [n for n, k in knobs.items() if k.changes_libraries] == ["omp_runtime", "allocator"]
    assert knobs["torch_threads"].family == knobs["intra_op"].family == "threads"
    assert not knobs["allocator"].needs_library and not knobs["torch_threads"].needs_library
