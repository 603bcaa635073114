"""The search space on a host: baselines as points of the space, launches, identity."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tuner.host import Host
from tuner.knobs import UNSET
from tuner.space import fit_to
from tuner.space.search_space import SpaceError, build_space
from tuner.spec import parse_text
from tuner.testing.specs import study_data, study_yaml


def space_of(text: str, host: Host):  # type: ignore[no-untyped-def]
    return build_space(parse_text(text, "t.yaml").studies[0], host)


SMALL_RESNET = {"builtin": "resnet", "params": {"preset": "small"}}
THREAD_KNOBS = {"intra_op": {"low": 1, "high": 56}, "inter_op": {"low": 1, "high": 4},
                "KMP_BLOCKTIME": [0, 10], "KMP_AFFINITY": "auto", "batch_size": 32}


def threads_study(**overrides: Any) -> str:
    """The thread-knob study (``THREADS``) with top-level keys replaced."""
    return study_yaml(**{"name": "t", "workload": SMALL_RESNET, "knobs": THREAD_KNOBS,
                         **overrides})


THREADS = threads_study()


def test_vendor_baseline_on_a_two_socket_xeon(xeon: Host) -> None:
    space = space_of(THREADS, xeon)
    vendor = next(b for b in space.baselines if b.name == "vendor")
    assert vendor.values == {"intra_op": 28, "inter_op": 2, "OMP_NUM_THREADS": 28,
                               "KMP_BLOCKTIME": 1, "KMP_AFFINITY": "granularity=fine,compact,1,0",
                               "cpunodebind": 0, "membind": 0}
    launch = space.launch(vendor.values)
    assert launch.prefix == ("numactl", "--cpunodebind=0", "--membind=0")
    assert launch.env == {"OMP_NUM_THREADS": "28", "KMP_BLOCKTIME": "1",
                          "KMP_AFFINITY": "granularity=fine,compact,1,0"}
    assert "--intra-op" in launch.argv and "--batch-size" in launch.argv
    assert vendor.params == {"intra_op": 28, "inter_op": 2, "KMP_BLOCKTIME": 1,
                             "KMP_AFFINITY": "granularity=fine,compact,1,0"}


def test_defaults_baseline_sets_nothing_but_fixed_knobs(xeon: Host) -> None:
    space = space_of(THREADS, xeon)
    defaults = next(b for b in space.baselines if b.name == "defaults")
    launch = space.launch(defaults.values)
    assert launch.prefix == () and launch.env == {}
    assert launch.argv[-2:] == ("--batch-size", "32")  # fixed knobs are part of the workload
    # TensorFlow's default pools (all 112 CPUs) lie outside intra_op 1..56 and inter_op
    # 1..4: recorded as the nearest values and flagged approximate; what ran is "nothing".
    assert defaults.params["intra_op"] == 56 and defaults.params["inter_op"] == 4
    assert set(defaults.approximate) == {"intra_op", "inter_op"}


def test_categorical_domains_grow_to_hold_the_baselines(xeon: Host) -> None:
    space = space_of(THREADS, xeon)
    dims = {d.name: d.domain for d in space.dims}
    # KMP_BLOCKTIME [0, 10] gains the vendor's 1 and the runtime default 200
    assert dims["KMP_BLOCKTIME"].values() == [0, 10, 200, 1]
    assert UNSET in dims["KMP_AFFINITY"].values()
    assert space.size == 56 * 4 * 4 * len(dims["KMP_AFFINITY"].values())
    assert space.fixed == {"batch_size": 32}


def test_vendor_binds_through_physcpubind_when_the_study_tunes_it(xeon: Host) -> None:
    space = space_of("name: p\nworkload: {builtin: resnet}\nknobs: {physcpubind: auto}\n", xeon)
    vendor = next(b for b in space.baselines if b.name == "vendor")
    assert vendor.values["physcpubind"] == 28
    assert space.launch(vendor.values).prefix == ("numactl", "--physcpubind=0-27",
                                                    "--membind=0")


def test_vendor_without_numactl_skips_memory_binding_with_a_note(xeon_no_numactl: Host) -> None:
    space = space_of(THREADS, xeon_no_numactl)
    vendor = next(b for b in space.baselines if b.name == "vendor")
    launch = space.launch(vendor.values)
    assert launch.prefix == ("taskset", "-c", "0-27,56-83")
    assert any("membind" in note and "numactl" in note for note in launch.notes)


def test_single_value_domains_become_fixed(xeon: Host) -> None:
    space = space_of("name: f\nworkload: {builtin: resnet}\nknobs:\n  precision: [fp32]\n"
                     "  xla: [off, on]\n", xeon)
    assert space.fixed == {"precision": "fp32"}  # both baselines run fp32: nothing to tune
    assert [d.name for d in space.dims] == ["xla"]


def test_space_key_changes_with_the_space_not_the_budget(xeon: Host) -> None:
    a = space_of(THREADS, xeon).key()
    assert space_of(threads_study(budget={"n_trials": 99}), xeon).key() == a
    wider = {**THREAD_KNOBS, "inter_op": {"low": 1, "high": 8}}
    assert space_of(threads_study(knobs=wider), xeon).key() != a


def test_suggest_uses_optuna_distributions(xeon: Host) -> None:
    import optuna

    space = space_of(THREADS, xeon)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    values = space.suggest(trial)
    assert set(values) == {"intra_op", "inter_op", "KMP_BLOCKTIME", "KMP_AFFINITY"}
    assert 1 <= values["intra_op"] <= 56


def test_oversized_grid_is_refused(xeon: Host) -> None:
    text = threads_study(knobs={**THREAD_KNOBS, "OMP_NUM_THREADS": "auto",
                                "physcpubind": "auto"},
                         sampler={"name": "grid"}, threads_within_binding=False)
    with pytest.raises(SpaceError, match="too large"):
        space_of(text, xeon)


def test_units_follow_the_mode() -> None:
    from tuner.space.workload import unit_of

    def unit(workload: str) -> str:
        return unit_of(parse_text(f"name: u\nworkload: {workload}\n", "u.yaml").studies[0].workload)

    assert unit("{builtin: parallel_wavenet, params: {mode: distill}}") == "steps/s"
    assert unit("{builtin: parallel_wavenet}") == "timesteps/s"
    assert unit("{builtin: resnet, params: {mode: train}}") == "images/s"
    assert unit("{command: [x], parser: protocol}") == ""


def membind_data(domain: Any) -> dict[str, Any]:
    """A study whose ``membind`` knob has ``domain``, as data."""
    return study_data(name="m", workload=SMALL_RESNET,
                      knobs={"intra_op": {"low": 1, "high": 4}, "membind": domain})


def test_an_auto_domain_this_host_cannot_apply_is_dropped_with_a_note(
        xeon_no_numactl: Host) -> None:
    space = space_of(yaml.safe_dump(membind_data("auto"), sort_keys=False), xeon_no_numactl)
    assert "membind" not in space.names and "membind" not in space.fixed
    assert list(space.dropped) == ["membind"]
    [note] = space.notes
    assert note.startswith("m: knobs.membind (auto) left out:") and "numactl" in note


def test_an_explicit_domain_this_host_cannot_apply_still_fails(xeon_no_numactl: Host) -> None:
    with pytest.raises(SpaceError, match="membind: cannot be applied here"):
        space_of(yaml.safe_dump(membind_data([0, 1]), sort_keys=False), xeon_no_numactl)


def test_only_the_studies_about_to_run_are_fitted_to_the_host(xeon_no_numactl: Host) -> None:
    ok = {"name": "ok", "workload": {"builtin": "resnet"}, "knobs": {"intra_op": [1, 2]}}
    text = yaml.safe_dump({"studies": [membind_data([0, 1]), ok]}, sort_keys=False)
    with pytest.raises(Exception, match="membind"):
        parse_text(text, "t.yaml", fit=fit_to(xeon_no_numactl))
    loaded = parse_text(text, "t.yaml", fit=fit_to(xeon_no_numactl), only={"ok"})
    assert [s.name for s in loaded.studies] == ["m", "ok"]


def test_the_space_key_of_a_study_stored_before_runtimes_is_unchanged(xeon: Host) -> None:
    """Fields added later (runtime, echo) leave the key of a study that does not use them as
    it was, so a study stored by an earlier tuner resumes; the runtime's two spellings
    (tensorflow: true / runtime: tensorflow) are one identity."""
    from tuner.space.search_space import _workload_identity

    spec = parse_text(THREADS, "t.yaml").studies[0]
    identity = _workload_identity(spec.workload)
    assert "runtime" not in identity and "echo" not in identity
    assert identity["tensorflow"] is True  # the old default, as the stored key read it
    key = space_of(THREADS, xeon).key()
    workload = {"builtin": "resnet", "params": {"preset": "small"}, "runtime": "tensorflow"}
    assert space_of(threads_study(workload=workload), xeon).key() == key
    command = {"command": ["prog"], "parser": "protocol"}
    old = {**command, "tensorflow": True}
    new = {**command, "runtime": "tensorflow"}
    knobs = {"OMP_NUM_THREADS": [1, 2]}
    assert space_of(threads_study(workload=old, knobs=knobs), xeon).key() == \
        space_of(threads_study(workload=new, knobs=knobs), xeon).key()
    native = {**command, "runtime": "native"}
    assert space_of(threads_study(workload=native, knobs=knobs), xeon).key() != \
        space_of(threads_study(workload=new, knobs=knobs), xeon).key()
