"""A space valid by construction: dependent ranges, narrowed domains, the valid-space size,
and concurrent instances on disjoint cores."""

from __future__ import annotations

from itertools import product

import optuna
import pytest

from tests.conftest import FAKE_WORKLOAD, PYTHON
from tuner.execution.runner import RunRequest, run
from tuner.host import Host, parse_cpu_list
from tuner.knobs import IntDomain
from tuner.space.search_space import SpaceError, build_space
from tuner.spec import parse_text


def space_of(knobs: str, host: Host, extra: str = ""):  # type: ignore[no-untyped-def]
    text = f"name: c\nworkload: {{builtin: resnet}}\nknobs:\n{knobs}{extra}"
    return build_space(parse_text(text, "c.yaml").studies[0], host)


def sample(space, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 1.0)
    return out


KNOBS = "  physcpubind: {low: 1, high: 56}\n  instances: {low: 1, high: 8}\n" \
        "  intra_op: {low: 2, high: 112}\n"


def test_every_sampled_configuration_fits_its_binding(xeon: Host) -> None:
    space = space_of(KNOBS, xeon)
    assert [d.name for d in space.dims][:2] == ["physcpubind", "instances"]
    for values in sample(space, 400):
        per_instance = values["physcpubind"] // values["instances"]
        assert per_instance >= 2  # room for the smallest intra_op
        assert values["intra_op"] <= per_instance  # one hardware thread per core bound


def test_valid_space_size_matches_brute_force(xeon: Host) -> None:
    space = space_of(KNOBS, xeon)
    brute = sum(1 for cores, copies, threads in product(range(1, 57), range(1, 9),
                                                         range(2, 113))
                if cores // copies >= 2 and threads <= cores // copies)
    assert space.size == brute
    assert space.size < 56 * 8 * 111  # the raw grid is far larger


def test_domains_are_narrowed_up_front(xeon: Host) -> None:
    space = space_of("  physcpubind: auto\n  intra_op: {low: 10, high: 56, step: 2}\n", xeon)
    dims = {d.name: d.domain for d in space.dims}
    assert dims["physcpubind"] == IntDomain(10, 56)  # fewer than 10 cores cannot hold 10 threads


def test_binding_follows_the_thread_count(xeon: Host) -> None:
    space = space_of("  physcpubind: {follow: intra_op}\n  instances: [1, 2, 4]\n"
                     "  intra_op: {low: 1, high: 28}\n", xeon)
    assert "physcpubind" not in [d.name for d in space.dims]
    for values in sample(space, 200):
        assert values["physcpubind"] == values["intra_op"] * values["instances"]
        assert values["physcpubind"] <= 56
        launch = space.launch(values)
        copies = launch.copies()
        assert len(copies) == values["instances"]
        for copy in copies:  # each instance is bound to exactly intra_op cores
            assert len(parse_cpu_list(copy.prefix[1].split("=")[1])) == values["intra_op"]


def test_binding_follows_torchs_pool(xeon: Host) -> None:
    text = ("name: c\nworkload: {builtin: torch_resnet}\nknobs:\n"
            "  physcpubind: {follow: torch_threads}\n  torch_threads: {low: 1, high: 28}\n")
    space = build_space(parse_text(text, "c.yaml").studies[0], xeon)
    assert [d.name for d in space.dims] == ["torch_threads"]
    for values in sample(space, 50):
        assert values["physcpubind"] == values["torch_threads"]
        launch = space.launch(values)
        (copy,) = launch.copies()
        assert len(copy.cpus or ()) == values["torch_threads"]
        assert launch.argv[launch.argv.index("--threads") + 1] == str(values["torch_threads"])


def test_thread_choices_that_depend_on_the_binding_need_a_range(xeon: Host) -> None:
    with pytest.raises(SpaceError, match="needs a range"):
        space_of("  physcpubind: auto\n  intra_op: [1, 2, 4, 8]\n", xeon)


def test_threads_beyond_the_binding_when_asked(xeon: Host) -> None:
    space = space_of("  physcpubind: {low: 1, high: 4}\n  intra_op: {low: 1, high: 16}\n", xeon,
                     "threads_within_binding: false\n")
    assert space.size == 4 * 16
    with pytest.raises(SpaceError, match="rectangular grid"):
        space_of("  physcpubind: {low: 1, high: 4}\n  intra_op: {low: 1, high: 16}\n", xeon,
                 "sampler: {name: grid}\n")


def test_instances_split_the_binding_into_disjoint_cores(xeon: Host) -> None:
    space = space_of("  instances: [1, 2, 4]\n  physcpubind: {choices: [8, 16]}\n", xeon)
    launch = space.launch({"instances": 2, "physcpubind": 8})
    assert [c.prefix for c in launch.copies()] == [("numactl", "--physcpubind=0-3"),
                                                   ("numactl", "--physcpubind=4-7")]
    assert launch.shell_line().count("numactl") == 2 and launch.shell_line().endswith("& wait")


def test_concurrent_instances_add_up(local_host: Host) -> None:
    if local_host.topology.physical_cores < 2:
        pytest.skip("needs two cores")
    text = f"""
name: multi
workload:
  command: [{PYTHON}, {FAKE_WORKLOAD}, --threads, "3", --intervals, "2"]
  parser: protocol
knobs: {{instances: 2}}
"""
    space = build_space(parse_text(text, "m.yaml").studies[0], local_host)
    launch = space.launch(space.fixed)
    outcome = run(RunRequest(launch=launch, metric="throughput", timeout=30,
                             base_env={"PATH": "/usr/bin:/bin"}))
    assert outcome.ok, outcome.reason
    assert outcome.metrics["throughput"] == pytest.approx(2 * 1000 * 0.975, rel=0.01)
    assert len(outcome.intervals["throughput"]) == 2
    assert outcome.reported is not None
    affinities = [set(s["affinity"]) for s in outcome.reported["instances"]]
    assert len(affinities) == 2 and not affinities[0] & affinities[1]
    assert "[0] " in outcome.tail and "[1] " in outcome.tail
