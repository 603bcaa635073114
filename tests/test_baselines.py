"""The baselines per runtime: the vendor recipe of a TensorFlow, an OpenMP and a native
program (values and launch), and the defaults baseline running each custom knob's
``default``, down to a real program that cannot start without its flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from tests.conftest import PROGRAMS, PYTHON
from tuner.host import Host
from tuner.knobs import KnobContext, Target, catalogue
from tuner.knobs.base import Runtime
from tuner.space.baselines import COMPACT, vendor_recipe
from tuner.space.search_space import BaselineTrial, SearchSpace, SpaceError, build_space
from tuner.spec import parse_text
from tuner.store.attributes import LAUNCH, REASON, REPORTED, ROLE, SHELL
from tuner.testing.specs import study_yaml
from tuner.testing.studies import run_study_file

NEEDS_THREADS = str(PROGRAMS / "needs_threads.py")
#: What each runtime may never see in its vendor baseline's environment.
FOREIGN = {"tensorflow": (), "openmp": ("TF_",), "native": ("TF_", "OMP_", "KMP_")}


def command(runtime: str | None, **more: Any) -> dict[str, Any]:
    workload: dict[str, Any] = {"command": ["bench", "--json"], "parser": "protocol", **more}
    if runtime is not None:
        workload["runtime"] = runtime
    return workload


def space_of(host: Host, *, workload: dict[str, Any], knobs: dict[str, Any]) -> SearchSpace:
    text = study_yaml(name="b", workload=workload, knobs=knobs)
    return build_space(parse_text(text, "b.yaml").studies[0], host)


def baseline(space: SearchSpace, name: str) -> BaselineTrial:
    return next(b for b in space.baselines if b.name == name)


ARENA = {"arena": {"env": "MALLOC_ARENA_MAX", "choices": [1, 2, 4]}}


def test_tensorflow_vendor_baseline_is_intels_recipe_for_tensorflow(xeon: Host) -> None:
    space = space_of(xeon, workload=command("tensorflow"), knobs=ARENA)
    vendor = baseline(space, "vendor")
    assert vendor.values == {"intra_op": 28, "inter_op": 2, "OMP_NUM_THREADS": 28,
                             "KMP_BLOCKTIME": 1, "KMP_AFFINITY": COMPACT,
                             "cpunodebind": 0, "membind": 0}
    launch = space.launch({**vendor.values, **space.fixed})
    assert launch.prefix == ("numactl", "--cpunodebind=0", "--membind=0")
    assert launch.env == {"TF_NUM_INTRAOP_THREADS": "28", "TF_NUM_INTEROP_THREADS": "2",
                          "OMP_NUM_THREADS": "28", "KMP_BLOCKTIME": "1",
                          "KMP_AFFINITY": COMPACT}
    assert launch.argv == ("bench", "--json") and not launch.notes


def test_builtins_keep_their_tensorflow_recipe(xeon: Host) -> None:
    space = space_of(xeon, workload={"builtin": "resnet"}, knobs={"intra_op": [1, 28]})
    assert space.ctx.target.kind_of_runtime == "tensorflow"
    assert baseline(space, "vendor").values == {
        "intra_op": 28, "inter_op": 2, "OMP_NUM_THREADS": 28, "KMP_BLOCKTIME": 1,
        "KMP_AFFINITY": COMPACT, "cpunodebind": 0, "membind": 0}


def test_openmp_vendor_baseline_sets_the_openmp_variables_and_no_tensorflow_one(
        xeon: Host) -> None:
    space = space_of(xeon, workload=command("openmp"), knobs=ARENA)
    vendor = baseline(space, "vendor")
    assert vendor.values == {"OMP_NUM_THREADS": 28, "KMP_BLOCKTIME": 1,
                             "KMP_AFFINITY": COMPACT, "cpunodebind": 0, "membind": 0}
    launch = space.launch({**vendor.values, **space.fixed})
    assert launch.prefix == ("numactl", "--cpunodebind=0", "--membind=0")
    assert launch.env == {"OMP_NUM_THREADS": "28", "KMP_BLOCKTIME": "1",
                          "KMP_AFFINITY": COMPACT}
    assert not launch.notes


@pytest.mark.parametrize("runtime", [None, "native"])
def test_native_vendor_baseline_only_binds(xeon: Host, runtime: str | None) -> None:
    space = space_of(xeon, workload=command(runtime), knobs=ARENA)
    vendor = baseline(space, "vendor")
    assert vendor.values == {"cpunodebind": 0, "membind": 0}
    launch = space.launch({**vendor.values, **space.fixed})
    assert launch.prefix == ("numactl", "--cpunodebind=0", "--membind=0")
    assert launch.env == {} and not launch.notes
    assert "TF_" not in launch.shell_line() and "OMP_" not in launch.shell_line()


def test_native_vendor_without_numactl_binds_cpus_only(xeon_no_numactl: Host) -> None:
    space = space_of(xeon_no_numactl, workload=command("native"), knobs=ARENA)
    launch = space.launch(baseline(space, "vendor").values)
    assert launch.prefix == ("taskset", "-c", "0-27,56-83") and launch.env == {}
    assert any("membind" in note and "numactl" in note for note in launch.notes)


def test_vendor_binds_through_physcpubind_on_every_runtime(xeon: Host) -> None:
    for runtime in ("tensorflow", "openmp", "native"):
        space = space_of(xeon, workload=command(runtime), knobs={"physcpubind": "auto"})
        values = baseline(space, "vendor").values
        assert values["physcpubind"] == 28 and "cpunodebind" not in values
        assert space.launch(values).prefix == ("numactl", "--physcpubind=0-27",
                                               "--membind=0")


@pytest.mark.parametrize("runtime", ["tensorflow", "openmp", "native"])
def test_no_vendor_baseline_sets_a_variable_its_runtime_does_not_read(
        xeon: Host, runtime: Runtime) -> None:
    ctx = KnobContext(host=xeon, target=Target(builtin=None, runtime=runtime))
    recipe = vendor_recipe(ctx, tuned_or_fixed=set())
    space = space_of(xeon, workload=command(runtime), knobs=ARENA)
    assert baseline(space, "vendor").values == recipe
    env = space.launch(recipe).env
    assert not [name for name in env if name.startswith(FOREIGN[runtime] or ("-",))]


@pytest.mark.parametrize("runtime", [None, "openmp", "native"])
def test_tensorflow_thread_knobs_need_a_tensorflow_runtime(xeon: Host,
                                                           runtime: str | None) -> None:
    with pytest.raises(SpaceError) as caught:
        space_of(xeon, workload=command(runtime), knobs={"intra_op": [1, 2]})
    assert "not a TensorFlow program" in str(caught.value)
    assert "set workload.runtime: tensorflow" in str(caught.value)
    space = space_of(xeon, workload=command(runtime), knobs={"inter_op": "auto", **ARENA})
    assert "set workload.runtime: tensorflow" in space.dropped["inter_op"]


def test_openmp_knobs_stay_available_on_every_runtime(xeon: Host) -> None:
    runtimes: tuple[Runtime, ...] = ("openmp", "native")
    for runtime in runtimes:
        ctx = KnobContext(host=xeon, target=Target(builtin=None, runtime=runtime))
        for name in ("OMP_NUM_THREADS", "KMP_BLOCKTIME", "KMP_AFFINITY", "KMP_HW_SUBSET"):
            knob = catalogue()[name]
            assert knob.availability(ctx) is None
            assert knob.note(ctx) is None  # the stock-TensorFlow caveat is TensorFlow's
    tf = KnobContext(host=xeon, target=Target(builtin=None, runtime="tensorflow"))
    assert catalogue()["KMP_BLOCKTIME"].note(tf)


def test_targets_spelled_the_older_way_keep_their_meaning() -> None:
    assert Target(builtin=None).kind_of_runtime == "tensorflow"
    assert Target(builtin=None, tensorflow=True).kind_of_runtime == "tensorflow"
    assert Target(builtin=None, tensorflow=False).kind_of_runtime == "native"
    assert Target(builtin=None, runtime="openmp").kind_of_runtime == "openmp"


def test_the_space_description_names_the_runtime(xeon: Host) -> None:
    space = space_of(xeon, workload=command("openmp"), knobs=ARENA)
    assert space.describe()["runtime"] == "openmp"
    native = space_of(xeon, workload=command("native"), knobs=ARENA)
    assert native.describe()["runtime"] == "native"
    assert native.key() == space_of(xeon, workload=command("native"), knobs=ARENA).key()


DEFAULTED = {"threads": {"flag": "--threads", "low": 1, "high": 8, "default": 4},
             "arena": {"env": "MALLOC_ARENA_MAX", "choices": [1, 2, 4], "default": 4},
             "verbose": {"flag": "--verbose", "choices": [True, False]}}


def test_the_defaults_baseline_runs_each_custom_knobs_default(xeon: Host) -> None:
    space = space_of(xeon, workload=command("native"), knobs=DEFAULTED)
    defaults = baseline(space, "defaults")
    assert defaults.values == {"threads": 4, "arena": 4}  # verbose has none: left unset
    launch = space.launch({**defaults.values, **space.fixed})
    assert launch.argv == ("bench", "--json", "--threads", "4")
    assert launch.env == {"MALLOC_ARENA_MAX": "4"} and launch.prefix == ()
    # its params are what it ran: the default, a point of the space
    assert defaults.params == {"threads": 4, "arena": 4, "verbose": "unset"}
    assert not defaults.approximate


def test_the_vendor_baseline_runs_the_defaults_too(xeon: Host) -> None:
    space = space_of(xeon, workload=command("openmp"), knobs=DEFAULTED)
    vendor = baseline(space, "vendor")
    assert vendor.values == {"threads": 4, "arena": 4, "OMP_NUM_THREADS": 28,
                             "KMP_BLOCKTIME": 1, "KMP_AFFINITY": COMPACT,
                             "cpunodebind": 0, "membind": 0}
    launch = space.launch(vendor.values)
    assert launch.argv == ("bench", "--json", "--threads", "4")
    assert launch.env["MALLOC_ARENA_MAX"] == "4"


def test_a_fixed_knob_wins_over_its_default(xeon: Host) -> None:
    knobs = {"threads": {"flag": "--threads", "value": 2},
             "arena": {"env": "MALLOC_ARENA_MAX", "choices": [1, 2]}}
    space = space_of(xeon, workload=command("native"), knobs=knobs)
    assert baseline(space, "defaults").values == {}
    assert space.fixed["threads"] == 2


def test_a_program_that_needs_its_flag_completes_its_baselines_with_a_default(
        tmp_path: Path, local_host: Host) -> None:
    study = tmp_path / "needs.yaml"
    study.write_text(study_yaml(
        name="needs-threads",
        workload={"command": [PYTHON, NEEDS_THREADS], "parser": "protocol", "timeout": 20},
        knobs={"threads": {"flag": "--threads", "low": 1, "high": 3, "default": 2}},
        budget={"n_trials": 2}, noise={"runs": 2}, repeats=1, screening="off",
        confirm={"top": 0}, pruner={"name": "none"}))
    result = run_study_file(study, local_host, f"sqlite:///{tmp_path / 'db.sqlite'}")
    trials = result.study.get_trials()
    assert [ROLE.get(t) for t in trials] == ["defaults", "vendor"]
    assert all(t.state == TrialState.COMPLETE for t in trials), [REASON.get(t) for t in trials]
    assert [t.value for t in trials] == [102, 102]
    for trial in trials:
        reported = REPORTED.get(trial)
        assert reported is not None and reported["threads"] == 2
        assert "--threads 2" in (SHELL.get(trial) or "")
        # a native program: neither baseline set a variable (the launch's env is what tuner
        # set; the environment the program saw may hold this machine's own TF_* names)
        assert (LAUNCH.get(trial) or {})["env"] == {}
        assert not set(reported["env"]) & {"OMP_NUM_THREADS", "KMP_BLOCKTIME", "KMP_AFFINITY",
                                           "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"}
