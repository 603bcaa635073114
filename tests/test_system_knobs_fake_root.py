"""The hardware system knobs against fake roots of two real servers (``tuner.testing.sysroots``):
a 2-socket Xeon Platinum 8280 and a 2-socket EPYC 7543.

For every hardware knob, on each vendor that has it: what it reads (current value, default,
``auto`` domain), a journaled write and its byte-for-byte restore (MSRs: only the knob's bit
changes), the unavailable paths with their reasons, domain errors for bad explicit values,
several knobs changed at once through one journal, and the recovery after a SIGKILL.

The two full trees are built once per module; a test that changes one must leave it as it
was (the write tests assert it), and a guard rebuilds a tree a failed test left changed.
The unavailable paths use 4-CPU trees of the same machines (built in milliseconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tuner.execution.launch import LaunchBuilder
from tuner.execution.system_journal import CannotApply, Journal
from tuner.execution.system_settings import SystemSetting, apply_setting, read_msr
from tuner.host import probe_host
from tuner.knobs import KnobContext
from tuner.knobs.base import UNSET, ChoiceDomain, DomainError, Target
from tuner.knobs.system import SystemKnob, scheduler_knobs
from tuner.knobs.system_hardware import hardware_knobs
from tuner.settings import get_settings
from tuner.spec.models import KnobSpec
from tuner.testing.sysroots import (
    AMD_PREFETCH_REGISTER,
    EPYC_7543,
    INTEL_PREFETCH_REGISTER,
    XEON_8280,
    Machine,
    Parts,
    epyc_2s,
    xeon_2s,
)

CPU = "sys/devices/system/cpu"
KNOBS: dict[str, SystemKnob] = {k.name: k for k in [*hardware_knobs(), *scheduler_knobs()]}
HARDWARE = [k.name for k in hardware_knobs()]
BUILDERS = {"xeon": xeon_2s, "epyc": epyc_2s}
MACHINES = {"xeon": XEON_8280, "epyc": EPYC_7543}
REGISTER = {"xeon": INTEL_PREFETCH_REGISTER, "epyc": AMD_PREFETCH_REGISTER}
N_CPUS = {"xeon": 112, "epyc": 128}
INTEL_ONLY = ("prefetch_l2_adjacent", "prefetch_l1_ip")
AMD_ONLY = ("prefetch_l1_stride", "prefetch_l1_region", "prefetch_l2_updown")
#: The hardware knobs each tree has (the rest are unavailable there, tested below).
HAS = {"xeon": [n for n in HARDWARE if n not in AMD_ONLY],
       "epyc": [n for n in HARDWARE if n not in INTEL_ONLY
                and n not in ("energy_perf_preference", "uncore_min_freq", "uncore_max_freq")]}


def context(root: Path) -> KnobContext:
    return KnobContext(host=probe_host(root), target=Target(builtin=None))


Snapshot = dict[str, Any]


def snapshot(root: Path, keys: list[str]) -> Snapshot:
    """The files ``keys`` (relative to ``root``): their bytes, or for an MSR file (sparse, up
    to 3 GB long) its length and the register at its end."""
    out: Snapshot = {}
    for key in keys:
        path = os.path.join(root, key)
        if key.startswith("dev/cpu/"):
            size = os.stat(path).st_size
            out[key] = (size, read_msr(path, size - 8))
        else:
            with open(path, "rb") as handle:
                out[key] = handle.read()
    return out


class Tree:
    """A module-wide fake root, its context, and the pristine contents of every file a
    system knob could write there (``watched``: the places of every knob on it)."""

    def __init__(self, vendor: str, root: Path) -> None:
        self.vendor = vendor
        self.root = root
        self.build()

    def build(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        BUILDERS[self.vendor](self.root)
        self.ctx = context(self.root)
        self.watched = sorted({str(place.relative_to(self.root)) for knob in KNOBS.values()
                               for place in knob.places(self.ctx)})
        self.pristine = self.now()

    def now(self) -> Snapshot:
        return snapshot(self.root, self.watched)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the trees and journals go: a tmpfs where there is one (the trees are some
    thousands of small files, which a loaded ext4 takes seconds to create, and the journal
    fsyncs), else pytest's temporary directory."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("sysroots")
        return
    base = Path(tempfile.mkdtemp(prefix="tuner-sysroots-", dir=shm))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fast_tmp(scratch: Path) -> Path:
    """A fresh directory under ``scratch`` for one test."""
    return Path(tempfile.mkdtemp(dir=scratch))


@pytest.fixture(scope="module")
def trees(scratch: Path) -> dict[str, Tree]:
    base = scratch / "trees"
    return {vendor: Tree(vendor, base / vendor) for vendor in BUILDERS}


@contextlib.contextmanager
def using(vendor: str, trees: dict[str, Tree]) -> Iterator[Tree]:
    """The module's tree of ``vendor``, rebuilt after a test that failed (the tests that
    change it assert that they put it back)."""
    found = trees[vendor]
    try:
        yield found
    except BaseException:
        found.build()
        raise


def guarded(found: Tree) -> Iterator[Tree]:
    """A fixture's tree, rebuilt after a test that left it changed."""
    yield found
    if found.now() != found.pristine:
        found.build()


@pytest.fixture(params=["xeon", "epyc"])
def tree(request: pytest.FixtureRequest, trees: dict[str, Tree]) -> Iterator[Tree]:
    yield from guarded(trees[request.param])


@pytest.fixture
def xeon(trees: dict[str, Tree]) -> Iterator[Tree]:
    yield from guarded(trees["xeon"])


@pytest.fixture
def epyc(trees: dict[str, Tree]) -> Iterator[Tree]:
    yield from guarded(trees["epyc"])


@pytest.fixture(scope="module")
def small_trees(scratch: Path) -> dict[str, Path]:
    """4-CPU trees of both machines, for the tests that only read (or chmod and put back)."""
    base = scratch / "small"
    return {vendor: build_small(vendor, base / vendor) for vendor in BUILDERS}


def small(machine: Machine) -> Machine:
    """The same machine with one core a socket (4 CPUs): the unavailable paths do not
    depend on the size."""
    return replace(machine, cores_per_socket=1)


def reason(knob: str, root: Path) -> str:
    found = KNOBS[knob].availability(context(root))
    assert found is not None, f"{knob} is available on {root}"
    return found


# --- reading --------------------------------------------------------------------------------

PREFETCH_ON = ("on", ("on", "off"))
READS = {
    "xeon": {
        "prefetch_l2_stream": PREFETCH_ON, "prefetch_l2_adjacent": PREFETCH_ON,
        "prefetch_l1_stream": PREFETCH_ON, "prefetch_l1_ip": PREFETCH_ON,
        "cpu_governor": ("powersave", ("performance", "powersave")),
        "cpu_min_freq": ("1000000", ("1000000", "2500000", "4000000")),
        "cpu_max_freq": ("4000000", ("1000000", "2500000", "4000000")),
        "energy_perf_preference": ("balance_performance",
                                   ("performance", "balance_performance", "balance_power")),
        "turbo": ("on", ("on", "off")),
        "uncore_min_freq": ("1200000", ("1200000", "1800000", "2400000")),
        "uncore_max_freq": ("2400000", ("1200000", "1800000", "2400000")),
        "idle_state_limit": ("C6", ("POLL", "C1", "C1E", "C6")),
        "smt": ("on", None),
    },
    "epyc": {
        "prefetch_l2_stream": PREFETCH_ON, "prefetch_l1_stream": PREFETCH_ON,
        "prefetch_l1_stride": PREFETCH_ON, "prefetch_l1_region": PREFETCH_ON,
        "prefetch_l2_updown": PREFETCH_ON,
        "cpu_governor": ("schedutil", ("performance", "powersave", "schedutil")),
        "cpu_min_freq": ("1500000", ("1500000", "2100000", "2800000")),
        "cpu_max_freq": ("2800000", ("1500000", "2100000", "2800000")),
        "turbo": ("on", ("on", "off")),
        "idle_state_limit": ("C2", ("POLL", "C1", "C2")),
        "smt": ("on", None),
    },
}


def test_every_hardware_knob_is_read_on_a_tree_that_has_it() -> None:
    assert sorted({*READS["xeon"], *READS["epyc"]}) == sorted(HARDWARE)
    assert {v: sorted(READS[v]) for v in READS} == {v: sorted(HAS[v]) for v in HAS}


@pytest.mark.parametrize(("vendor", "name"),
                         [(v, n) for v in READS for n in READS[v]])
def test_reads_the_tree(vendor: str, name: str, trees: dict[str, Tree]) -> None:
    tree = trees[vendor]
    knob = KNOBS[name]
    current, auto = READS[vendor][name]
    assert knob.availability(tree.ctx) is None
    assert knob.current(tree.ctx) == current
    assert knob.default_value(tree.ctx) == current
    assert len(knob.places(tree.ctx)) >= 1
    if auto is None:
        with pytest.raises(DomainError, match="never tuned on auto"):
            knob.domain(KnobSpec.model_validate("auto"), tree.ctx)
    else:
        domain = knob.domain(KnobSpec.model_validate("auto"), tree.ctx)
        assert isinstance(domain, ChoiceDomain)
        assert domain.choices == auto
        assert current in domain.choices


def test_prefetchers_read_their_own_bit(fast_tmp: Path) -> None:
    """Intel with the DCU IP prefetcher off (bit 3) and bits the knobs do not own set: only
    prefetch_l1_ip reads off, and is the default."""
    root = xeon_2s(fast_tmp, small(replace(XEON_8280, prefetch_value=0xF0 | 0x8)))
    ctx = context(root)
    reads = {n: KNOBS[n].current(ctx) for n in HAS["xeon"] if n.startswith("prefetch_")}
    assert reads == {"prefetch_l2_stream": "on", "prefetch_l2_adjacent": "on",
                     "prefetch_l1_stream": "on", "prefetch_l1_ip": "off"}
    assert KNOBS["prefetch_l1_ip"].default_value(ctx) == "off"


def test_amd_0x3c0_reads_as_every_prefetcher_on(epyc: Tree) -> None:
    assert read_msr(str(epyc.root / "dev/cpu/0/msr"), AMD_PREFETCH_REGISTER) == 0x3C0
    assert {KNOBS[n].current(epyc.ctx) for n in HAS["epyc"] if n.startswith("prefetch_")} \
        == {"on"}


def test_the_places_cover_every_cpu_policy_and_die(tree: Tree) -> None:
    n = N_CPUS[tree.vendor]
    ctx = tree.ctx
    assert len(KNOBS["prefetch_l2_stream"].places(ctx)) == n
    assert len(KNOBS["cpu_governor"].places(ctx)) == n
    states = 4 if tree.vendor == "xeon" else 3
    assert len(KNOBS["idle_state_limit"].places(ctx)) == n * states
    if tree.vendor == "xeon":
        assert [p.parent.name for p in KNOBS["uncore_min_freq"].places(ctx)] \
            == ["package_00_die_00", "package_01_die_00"]


def test_auto_follows_the_hosts_files(fast_tmp: Path) -> None:
    """The auto domains come from the tree: governors from scaling_available_governors
    (the knob's preferred ones, else all), the uncore's from initial_* (not the limits in
    force), idle states from their names."""
    machine = replace(XEON_8280, governors=("conservative", "ondemand"),
                      uncore=(800_000, 2_200_000),
                      idle_states=(*XEON_8280.idle_states[:2], XEON_8280.idle_states[3]))
    root = build_small("xeon", fast_tmp, machine=machine)
    for die in ("package_00_die_00", "package_01_die_00"):
        (root / CPU / "intel_uncore_frequency" / die / "max_freq_khz").write_text("2000000\n")
    ctx = context(root)
    auto = KnobSpec.model_validate("auto")
    assert KNOBS["cpu_governor"].domain(auto, ctx) == ChoiceDomain(("conservative", "ondemand"))
    assert KNOBS["uncore_max_freq"].current(ctx) == "2000000"
    assert KNOBS["uncore_max_freq"].domain(auto, ctx) \
        == ChoiceDomain(("800000", "1500000", "2200000"))
    assert KNOBS["idle_state_limit"].domain(auto, ctx) == ChoiceDomain(("POLL", "C1", "C6"))
    assert KNOBS["idle_state_limit"].current(ctx) == "C6"


def test_launch_lines_name_each_register_change(xeon: Tree) -> None:
    builder = LaunchBuilder(argv=["x"])
    for name, value in (("prefetch_l2_stream", "off"), ("turbo", "off")):
        KNOBS[name].apply(value, builder, xeon.ctx)
    lines = builder.build(xeon.ctx.host).system_lines()
    assert lines == [f"# turbo: echo 1 > {xeon.root / CPU / 'intel_pstate/no_turbo'}",
                     "# prefetch_l2_stream: MSR 0x1a4 bits 0x1 = 0x1 on 112 CPUs "
                     "(/dev/cpu/N/msr; e.g. wrmsr of msr-tools)"]


# --- writing and restoring ------------------------------------------------------------------

POLICY = f"{CPU}/cpufreq/policy*"
#: vendor, knob, value, and what the change writes: {glob: text} for files, {"msr": register
#: value} for the prefetchers.
WRITES: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("xeon", "prefetch_l2_stream", "off", {"msr": 0x1}),
    ("xeon", "prefetch_l2_adjacent", "off", {"msr": 0x2}),
    ("xeon", "prefetch_l1_stream", "off", {"msr": 0x4}),
    ("xeon", "prefetch_l1_ip", "off", {"msr": 0x8}),
    ("xeon", "cpu_governor", "performance", {f"{POLICY}/scaling_governor": "performance"}),
    ("xeon", "cpu_min_freq", "2500000", {f"{POLICY}/scaling_min_freq": "2500000"}),
    ("xeon", "cpu_max_freq", "2700000", {f"{POLICY}/scaling_max_freq": "2700000"}),
    ("xeon", "energy_perf_preference", "performance",
     {f"{POLICY}/energy_performance_preference": "performance"}),
    ("xeon", "turbo", "off", {f"{CPU}/intel_pstate/no_turbo": "1"}),
    ("xeon", "uncore_min_freq", "1800000",
     {f"{CPU}/intel_uncore_frequency/package_*_die_00/min_freq_khz": "1800000"}),
    ("xeon", "uncore_max_freq", "1800000",
     {f"{CPU}/intel_uncore_frequency/package_*_die_00/max_freq_khz": "1800000"}),
    ("xeon", "idle_state_limit", "C1", {f"{CPU}/cpu*/cpuidle/state2/disable": "1",
                                        f"{CPU}/cpu*/cpuidle/state3/disable": "1"}),
    ("xeon", "smt", "off", {f"{CPU}/smt/control": "off"}),
    ("epyc", "prefetch_l2_stream", "off", {"msr": 0x3C8}),
    ("epyc", "prefetch_l1_stream", "off", {"msr": 0x3C1}),
    ("epyc", "prefetch_l1_stride", "off", {"msr": 0x3C2}),
    ("epyc", "prefetch_l1_region", "off", {"msr": 0x3C4}),
    ("epyc", "prefetch_l2_updown", "off", {"msr": 0x3E0}),
    ("epyc", "cpu_governor", "performance", {f"{POLICY}/scaling_governor": "performance"}),
    ("epyc", "cpu_min_freq", "2100000", {f"{POLICY}/scaling_min_freq": "2100000"}),
    ("epyc", "cpu_max_freq", "2100000", {f"{POLICY}/scaling_max_freq": "2100000"}),
    ("epyc", "turbo", "off", {f"{CPU}/cpufreq/boost": "0"}),
    ("epyc", "idle_state_limit", "C1", {f"{CPU}/cpu*/cpuidle/state2/disable": "1"}),
    ("epyc", "smt", "off", {f"{CPU}/smt/control": "off"}),
]


def test_every_knob_of_each_tree_is_written() -> None:
    for vendor in HAS:
        assert sorted(n for v, n, _, _ in WRITES if v == vendor) == sorted(HAS[vendor])


def expected_changes(tree: Tree, writes: dict[str, Any]) -> Snapshot:
    """The snapshot entries ``writes`` changes, with their new contents."""
    out: Snapshot = {}
    for pattern, text in writes.items():
        if pattern == "msr":
            for cpu in range(N_CPUS[tree.vendor]):
                key = f"dev/cpu/{cpu}/msr"
                out[key] = (tree.pristine[key][0], text)
            continue
        matched = sorted(tree.root.glob(pattern))
        assert matched, pattern
        for path in matched:
            out[str(path.relative_to(tree.root))] = f"{text}\n".encode()
    return out


def changes(tree: Tree) -> Snapshot:
    now = tree.now()
    assert now.keys() == tree.pristine.keys()
    return {k: v for k, v in now.items() if v != tree.pristine[k]}


@pytest.mark.parametrize(("vendor", "name", "value", "writes"), WRITES,
                         ids=[f"{v}-{n}" for v, n, _, _ in WRITES])
def test_write_and_restore(vendor: str, name: str, value: Any, writes: dict[str, Any],
                           trees: dict[str, Tree], fast_tmp: Path) -> None:
    with using(vendor, trees) as tree:
        write_and_restore(tree, KNOBS[name], value, writes, Journal(fast_tmp / "state"))


def write_and_restore(tree: Tree, knob: SystemKnob, value: Any, writes: dict[str, Any],
                      journal: Journal) -> None:
    before = knob.current(tree.ctx)
    assert before is not None and before != value
    # the explicit value passes the domain (smt only takes listed values)
    assert knob.domain(KnobSpec.model_validate([value]), tree.ctx) == ChoiceDomain((value,))
    builder = LaunchBuilder(argv=["x"])
    knob.apply(value, builder, tree.ctx)
    settings = builder.system_settings()
    assert {s.knob for s in settings} == {knob.name}
    assert builder.build(tree.ctx.host).system == settings
    assert {str(Path(s.path).relative_to(tree.root)) for s in settings} <= set(tree.watched)
    with journal.changed(settings):
        assert changes(tree) == expected_changes(tree, writes)  # these, nothing else
        assert knob.current(tree.ctx) == value
        assert journal.path.exists()
    assert tree.now() == tree.pristine  # every file back, byte for byte
    assert knob.current(tree.ctx) == before
    assert not journal.path.exists()


def test_msr_writes_keep_the_other_bits(fast_tmp: Path) -> None:
    """Bits the knob does not own (set by the firmware, or another prefetcher already off)
    are kept, and the whole register comes back."""
    root = xeon_2s(fast_tmp / "root", small(replace(XEON_8280, prefetch_value=0xF2)))
    ctx = context(root)
    builder = LaunchBuilder(argv=["x"])
    KNOBS["prefetch_l2_stream"].apply("off", builder, ctx)
    KNOBS["prefetch_l2_adjacent"].apply("on", builder, ctx)  # bit 1 was set: clears it
    msrs = sorted(root.glob("dev/cpu/*/msr"))
    assert len(msrs) == 4
    with Journal(fast_tmp / "state").changed(builder.system_settings()):
        assert {read_msr(str(p), INTEL_PREFETCH_REGISTER) for p in msrs} == {0xF1}
    assert {read_msr(str(p), INTEL_PREFETCH_REGISTER) for p in msrs} == {0xF2}


def test_on_is_a_no_op_where_the_prefetcher_is_on(epyc: Tree, fast_tmp: Path) -> None:
    builder = LaunchBuilder(argv=["x"])
    KNOBS["prefetch_l2_stream"].apply("on", builder, epyc.ctx)
    setting = builder.system_settings()[0]
    assert (setting.form, setting.msr, setting.mask, setting.value) \
        == ("msr", AMD_PREFETCH_REGISTER, 0x8, "0x0")
    with Journal(fast_tmp / "state").changed(builder.system_settings()):
        assert changes(epyc) == {}


def test_unset_changes_nothing(xeon: Tree) -> None:
    builder = LaunchBuilder(argv=["x"])
    for name in HAS["xeon"]:
        KNOBS[name].apply(UNSET, builder, xeon.ctx)
    assert builder.system_settings() == ()


# --- several knobs through one journal, and a crash -----------------------------------------

TOGETHER = {
    "xeon": ({"prefetch_l2_stream": "off", "prefetch_l1_stream": "off",
              "cpu_governor": "performance", "cpu_max_freq": "2700000", "turbo": "off",
              "uncore_max_freq": "1800000", "idle_state_limit": "C1E"},
             0x5),
    "epyc": ({"prefetch_l2_stream": "off", "prefetch_l1_stream": "off",
              "prefetch_l2_updown": "off", "cpu_governor": "performance", "turbo": "off",
              "idle_state_limit": "C1"},
             0x3E9),
}


def settings_for(tree: Tree, values: dict[str, str]) -> tuple[SystemSetting, ...]:
    builder = LaunchBuilder(argv=["x"])
    for name, value in values.items():
        KNOBS[name].apply(value, builder, tree.ctx)
    return builder.system_settings()


def test_a_failed_write_puts_back_what_was_written(xeon: Tree, fast_tmp: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The 250th write fails (after both prefetchers of every CPU and 25 governors):
    everything written is put back, the journal removed, and CannotApply says so."""
    settings = settings_for(xeon, TOGETHER["xeon"][0])
    calls: list[SystemSetting] = []

    def failing(setting: SystemSetting) -> None:
        calls.append(setting)
        if len(calls) == 250:
            raise OSError(16, "Device or resource busy")
        apply_setting(setting)

    monkeypatch.setattr("tuner.execution.system_journal.apply_setting", failing)
    journal = Journal(fast_tmp / "state")
    with pytest.raises(CannotApply, match="everything changed so far is restored"):
        with journal.changed(settings):
            raise AssertionError("the block must not run")
    assert len(calls) == 250 and calls[-1].knob == "cpu_governor"
    assert xeon.now() == xeon.pristine
    assert not journal.path.exists()


def test_several_knobs_share_one_journal(tree: Tree, fast_tmp: Path) -> None:
    values, register = TOGETHER[tree.vendor]
    settings = settings_for(tree, values)
    journal = Journal(fast_tmp / "state")
    n = N_CPUS[tree.vendor]
    with journal.changed(settings):
        for name, value in values.items():
            assert KNOBS[name].current(tree.ctx) == value, name
        msrs = {read_msr(str(tree.root / f"dev/cpu/{cpu}/msr"), REGISTER[tree.vendor])
                for cpu in range(n)}
        assert msrs == {register}
        found = journal.read()
        assert found is not None
        record, entries = found
        assert record["pid"] == os.getpid()
        registers = [e for e in entries if e.form == "msr"]
        # one old value per register of each CPU, naming every knob that changes it
        assert len(registers) == n
        assert {e.old for e in registers} == {f"{tree.pristine['dev/cpu/0/msr'][1]:#018x}"}
        prefetchers = tuple(k for k in values if k.startswith("prefetch_"))
        assert {e.knobs for e in registers} == {prefetchers}
        assert len(entries) == len({s.place for s in settings})
    assert tree.now() == tree.pristine
    assert not journal.path.exists()


CRASH = """
import json, os, sys
from pathlib import Path
from tuner.execution.system_journal import Journal
from tuner.execution.system_settings import SystemSetting
settings = [SystemSetting.from_dict(s) for s in json.load(sys.stdin)]
with Journal(Path(sys.argv[1])).changed(settings):
    print("changed", flush=True)
    os.kill(os.getpid(), 9)
"""


def test_recover_after_a_sigkill(tree: Tree, fast_tmp: Path) -> None:
    values, register = TOGETHER[tree.vendor]
    settings = settings_for(tree, values)
    state = fast_tmp / "state"
    child = subprocess.Popen([sys.executable, "-c", CRASH, str(state)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    out, err = child.communicate(json.dumps([s.to_dict() for s in settings]), timeout=60)
    assert child.returncode == -9, err
    assert out == "changed\n"
    # the child died with everything changed and the journal on disk
    assert read_msr(str(tree.root / "dev/cpu/1/msr"), REGISTER[tree.vendor]) == register
    assert KNOBS["turbo"].current(tree.ctx) == "off"
    assert changes(tree) != {}
    journal = Journal(state)
    assert journal.path.exists()
    recovery = journal.recover()
    assert recovery is not None and not recovery.discarded
    assert recovery.pid == child.pid
    assert len(recovery.entries) == len({s.place for s in settings})
    assert "restored" in recovery.message()
    assert tree.now() == tree.pristine
    assert not journal.path.exists()
    assert journal.recover() is None


# --- unavailable ----------------------------------------------------------------------------

INTEL_PREFETCH = ["prefetch_l2_stream", "prefetch_l2_adjacent", "prefetch_l1_stream",
                  "prefetch_l1_ip"]
AMD_PREFETCH = ["prefetch_l2_stream", "prefetch_l1_stream", *AMD_ONLY]
POLICY_KNOBS = ["cpu_governor", "cpu_min_freq", "cpu_max_freq", "energy_perf_preference"]


def build_small(vendor: str, root: Path, machine: Machine | None = None,
                **parts: Any) -> Path:
    """A 4-CPU tree of ``vendor``'s machine (or ``machine``), with ``Parts(**parts)``."""
    return BUILDERS[vendor](root, small(machine or MACHINES[vendor]), Parts(**parts))


#: vendor, what the tree leaves out or changes, the knobs, and what the reason says.
UNAVAILABLE: list[tuple[str, str, dict[str, Any], list[str], list[str]]] = [
    ("xeon", "no-msr", {"msr": False}, INTEL_PREFETCH, ["modprobe msr", "dev/cpu/0/msr"]),
    ("epyc", "no-msr", {"msr": False}, AMD_PREFETCH, ["modprobe msr"]),
    ("xeon", "vm", {"msr": False, "machine": replace(XEON_8280, hypervisor=True)},
     INTEL_PREFETCH, ["modprobe msr", "virtual machine"]),
    ("epyc", "vm", {"msr": False, "machine": replace(EPYC_7543, hypervisor=True)},
     AMD_PREFETCH, ["virtual machine"]),
    ("xeon", "hybrid-model", {"machine": replace(XEON_8280, model=0x97)}, INTEL_PREFETCH,
     ["unknown CPU model", "GenuineIntel family 0x6 model 0x97"]),
    ("epyc", "hygon", {"machine": replace(EPYC_7543, vendor="HygonGenuine", family=0x18)},
     AMD_PREFETCH, ["unknown CPU model", "HygonGenuine family 0x18"]),
    ("epyc", "zen2", {"machine": replace(EPYC_7543, family=0x17, model=0x31)},
     AMD_PREFETCH, ["unknown CPU model", "family 0x17"]),
    ("epyc", "intel-only", {}, list(INTEL_ONLY), ["AuthenticAMD CPUs have no"]),
    ("xeon", "amd-only", {}, list(AMD_ONLY), ["GenuineIntel CPUs have no"]),
    ("xeon", "no-cpufreq", {"cpufreq": False}, POLICY_KNOBS, ["no cpufreq driver"]),
    ("epyc", "no-cpufreq", {"cpufreq": False}, POLICY_KNOBS[:3], ["no cpufreq driver"]),
    ("epyc", "no-epp", {}, ["energy_perf_preference"],
     ["the cpufreq driver has no energy_performance_preference"]),
    ("xeon", "no-uncore", {"uncore": False}, ["uncore_min_freq", "uncore_max_freq"],
     ["modprobe intel-uncore-frequency"]),
    ("epyc", "amd-uncore", {}, ["uncore_min_freq", "uncore_max_freq"],
     ["AuthenticAMD CPUs have no uncore frequency control"]),
    ("xeon", "no-turbo", {"turbo": False}, ["turbo"], ["intel_pstate/no_turbo nor"]),
    ("epyc", "no-boost", {"turbo": False}, ["turbo"], ["nor cpufreq/boost"]),
    ("xeon", "no-cpuidle", {"cpuidle": False}, ["idle_state_limit"], ["no cpuidle states"]),
    ("epyc", "one-idle-state", {"machine": replace(EPYC_7543,
                                                    idle_states=EPYC_7543.idle_states[:1])},
     ["idle_state_limit"], ["a single state"]),
    ("xeon", "smt-notsupported", {"smt_control": "notsupported"}, ["smt"],
     ["SMT control reads 'notsupported'"]),
    ("epyc", "smt-forceoff", {"smt_control": "forceoff"}, ["smt"], ["'forceoff'"]),
    ("xeon", "no-debugfs", {"debugfs": False},
     ["sched_migration_cost_ns", "sched_base_slice_ns"],
     ["debugfs is not mounted", "mount -t debugfs"]),
    ("epyc", "cfs-kernel", {"machine": replace(EPYC_7543, osrelease="5.15.0-119-generic")},
     ["sched_base_slice_ns"], ["kernel 5.15 has no sched/base_slice_ns", "6.6"]),
    ("xeon", "eevdf-kernel", {}, ["sched_wakeup_granularity_ns"],
     ["kernel 6.8 has no sched/wakeup_granularity_ns"]),
]


@pytest.mark.parametrize(("vendor", "case", "parts", "names", "words"), UNAVAILABLE,
                         ids=[f"{v}-{c}" for v, c, _, _, _ in UNAVAILABLE])
def test_unavailable(vendor: str, case: str, parts: dict[str, Any], names: list[str],
                     words: list[str], fast_tmp: Path) -> None:
    root = build_small(vendor, fast_tmp / "root", **parts)
    ctx = context(root)
    for name in names:
        knob = KNOBS[name]
        why = reason(name, root)
        for word in words:
            assert word in why, (name, why)
        if case == "no-msr":
            assert "virtual machine" not in why
        assert knob.default_value(ctx) == UNSET
        if not case.startswith("smt-"):
            assert knob.places(ctx) == [], name  # nothing to write


def test_missing_smt_control(fast_tmp: Path) -> None:
    root = build_small("xeon", fast_tmp)
    (root / CPU / "smt/control").unlink()
    assert "a kernel without SMT control" in reason("smt", root)


def test_a_cpu_without_msr_file_makes_the_prefetchers_unavailable(fast_tmp: Path) -> None:
    root = build_small("epyc", fast_tmp)
    (root / "dev/cpu/3/msr").unlink()
    assert "modprobe msr" in reason("prefetch_l2_stream", root)


@pytest.mark.parametrize(("kernel", "where"), [("5.10.0-32-amd64", "kernel"),
                                               ("6.1.0-25-amd64", "sched")])
def test_cfs_kernels_have_the_cfs_tunables(kernel: str, where: str, fast_tmp: Path) -> None:
    """5.10 keeps them as sysctls (``proc/sys/kernel/sched_*``), 6.1 in debugfs; neither
    has EEVDF's base_slice_ns."""
    root = build_small("epyc", fast_tmp, machine=replace(EPYC_7543, osrelease=kernel))
    ctx = context(root)
    for name, value in (("sched_migration_cost_ns", "500000"),
                        ("sched_wakeup_granularity_ns", "4000000")):
        assert KNOBS[name].availability(ctx) is None
        assert KNOBS[name].current(ctx) == value
        assert KNOBS[name].places(ctx)[0].parent.name == where
    assert KNOBS["sched_base_slice_ns"].places(ctx) == []


def test_a_cfs_kernel_has_no_base_slice(fast_tmp: Path) -> None:
    root = build_small("epyc", fast_tmp, machine=replace(EPYC_7543, osrelease="6.1.0-25-amd64"))
    assert "kernel 6.1 has no sched/base_slice_ns (EEVDF, kernel 6.6 and later)" \
        in reason("sched_base_slice_ns", root)


def test_a_pre_5_13_kernel_with_debugfs_mounted_is_told_its_kernel(fast_tmp: Path) -> None:
    root = build_small("epyc", fast_tmp, machine=replace(EPYC_7543, osrelease="5.10.0-32-amd64"))
    assert (root / "sys/kernel/debug/sched_features").exists()  # debugfs is mounted
    why = reason("sched_base_slice_ns", root)
    assert "not mounted" not in why
    assert "kernel 5.10 has no sched/base_slice_ns" in why


def test_the_sched_knobs_on_each_tree(tree: Tree) -> None:
    for name, value in (("sched_migration_cost_ns", "500000"),
                        ("sched_base_slice_ns", "3000000")):
        assert KNOBS[name].availability(tree.ctx) is None
        assert KNOBS[name].default_value(tree.ctx) == value


@pytest.fixture
def read_only_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)


@pytest.mark.parametrize(("vendor", "name"), [(v, n) for v in HAS for n in HAS[v]])
def test_read_only_file(vendor: str, name: str, small_trees: dict[str, Path],
                        read_only_as_root: None) -> None:
    """The last place read-only (every place is checked, not only the first)."""
    root = small_trees[vendor]
    knob = KNOBS[name]
    assert knob.availability(context(root)) is None
    last = knob.places(context(root))[-1]
    mode = last.stat().st_mode
    last.chmod(0o444)
    try:
        why = reason(name, root)
        assert "read-only" in why and str(last) in why
        assert knob.default_value(context(root)) == UNSET
    finally:
        last.chmod(mode)


@pytest.mark.parametrize(("vendor", "name"), [(v, n) for v in HAS for n in HAS[v]])
def test_not_root(vendor: str, name: str, small_trees: dict[str, Path],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = small_trees[vendor]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    why = reason(name, root)
    assert "needs root" in why and "uid 1000" in why


@pytest.mark.parametrize(("policy", "allowed"), [
    ("none", set()),
    ("", set()),
    ("turbo, SMT,prefetch_l1_stream", {"turbo", "smt", "prefetch_l1_stream"}),
    ("all", set(HARDWARE)),
])
def test_the_hosts_policy(policy: str, allowed: set[str], tree: Tree,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_SYSTEM_KNOBS", policy)
    get_settings.cache_clear()
    try:
        for name in HAS[tree.vendor]:
            why = KNOBS[name].availability(tree.ctx)
            if name in allowed:
                assert why is None, (name, why)
            else:
                assert why is not None and f"TUNER_SYSTEM_KNOBS={policy!r}" in why \
                    and f"does not name {name}" in why, (name, why)
                assert KNOBS[name].default_value(tree.ctx) == UNSET
    finally:
        monkeypatch.delenv("TUNER_SYSTEM_KNOBS")
        get_settings.cache_clear()


def test_doctor_lists_the_knobs(xeon: Tree) -> None:
    from tuner.knobs.system import system_status

    rows = {name: (current, state) for name, current, state
            in system_status(xeon.ctx, hardware_knobs())}
    assert rows["turbo"] == ("on", "writable")
    assert rows["smt"] == ("on", "writable (disruptive: only with listed values)")
    assert rows["prefetch_l1_stride"][0] == "-"
    assert rows["prefetch_l1_stride"][1].startswith("unavailable: GenuineIntel CPUs have no")


# --- domains --------------------------------------------------------------------------------

BAD: list[tuple[str, str, Any, str]] = [
    ("xeon", "cpu_min_freq", [900000], "900000 kHz is outside this CPU's 1000000..4000000"),
    ("xeon", "cpu_max_freq", [2000000, 4100000], "4100000 kHz is outside"),
    ("epyc", "cpu_max_freq", ["3700000"], "outside this CPU's 1500000..2800000 kHz"),
    ("xeon", "cpu_min_freq", ["fast"], "expected a frequency in kHz"),
    ("xeon", "cpu_min_freq", {"low": 1000000, "high": 5000000, "step": 1000000},
     "5000000 kHz is outside"),
    ("xeon", "uncore_max_freq", [3000000], "outside the uncore's 1200000..2400000 kHz"),
    ("xeon", "uncore_min_freq", [800000], "outside the uncore's"),
    ("xeon", "cpu_governor", ["ondemand"],
     "expected one of ['performance', 'powersave'] (this host's scaling_available_governors)"),
    ("epyc", "cpu_governor", ["turbo"], "this host's scaling_available_governors"),
    ("xeon", "energy_perf_preference", ["max"], "energy_performance_available_preferences"),
    ("epyc", "idle_state_limit", ["C6"], "expected one of this host's states"
                                         " ['POLL', 'C1', 'C2']"),
    ("xeon", "idle_state_limit", ["C3"], "['POLL', 'C1', 'C1E', 'C6']"),
    ("xeon", "prefetch_l2_stream", ["disabled"], "expected one of ['on', 'off']"),
    ("epyc", "turbo", ["2"], "expected one of ['on', 'off']"),
    ("xeon", "smt", ["forceoff"], "expected one of ['on', 'off']"),
    ("xeon", "cpu_governor", {"low": 1, "high": 2}, "takes choices, not a numeric range"),
]


@pytest.mark.parametrize(("vendor", "name", "spec", "words"), BAD,
                         ids=[f"{v}-{n}-{i}" for i, (v, n, _, _) in enumerate(BAD)])
def test_bad_values(vendor: str, name: str, spec: Any, words: str,
                    trees: dict[str, Tree]) -> None:
    with pytest.raises(DomainError) as caught:
        KNOBS[name].domain(KnobSpec.model_validate(spec), trees[vendor].ctx)
    assert words in str(caught.value)


GOOD: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("xeon", "cpu_min_freq", {"low": 1000000, "high": 4000000, "step": 1000000},
     ("1000000", "2000000", "3000000", "4000000")),
    ("epyc", "cpu_max_freq", [1500000, "2800000"], ("1500000", "2800000")),
    ("epyc", "cpu_governor", ["ondemand", "performance"], ("ondemand", "performance")),
    ("xeon", "turbo", [True, False], ("on", "off")),  # YAML 1.1's on/off
    ("epyc", "prefetch_l1_region", [False], ("off",)),
    ("xeon", "smt", ["on", "off"], ("on", "off")),
    ("xeon", "idle_state_limit", ["POLL", "C1E"], ("POLL", "C1E")),
    ("xeon", "uncore_min_freq", {"low": 1200000, "high": 2400000, "step": 600000},
     ("1200000", "1800000", "2400000")),
]


@pytest.mark.parametrize(("vendor", "name", "spec", "choices"), GOOD,
                         ids=[f"{v}-{n}" for v, n, _, _ in GOOD])
def test_good_values(vendor: str, name: str, spec: Any, choices: tuple[str, ...],
                     trees: dict[str, Tree]) -> None:
    domain = KNOBS[name].domain(KnobSpec.model_validate(spec), trees[vendor].ctx)
    assert domain == ChoiceDomain(choices)


def test_the_trees_match_their_machines(trees: dict[str, Tree]) -> None:
    for vendor, tree in trees.items():
        topology = tree.ctx.host.topology
        assert len(topology.cpus) == N_CPUS[vendor]
        assert topology.threads_per_core == 2 and topology.nodes == [0, 1]
        assert [c.id for c in topology.cores[0]] == [0, N_CPUS[vendor] // 2]
        assert "hypervisor" not in topology.flags
        assert tree.ctx.host.root == tree.root
        msr = tree.root / "dev/cpu/0/msr"
        assert msr.stat().st_size == REGISTER[vendor] + 8
        assert stat.S_IMODE(msr.stat().st_mode) == 0o600


def test_uncore_on_the_tpmi_layout(fast_tmp: Path) -> None:
    """Kernel 6.5+ on Granite Rapids exposes uncoreNN folders (TPMI) with the same files."""
    root = build_small("xeon", fast_tmp)
    folder = root / "sys/devices/system/cpu/intel_uncore_frequency"
    for index, die in enumerate(sorted(folder.glob("package_*_die_*"))):
        die.rename(folder / f"uncore{index:02d}")
    ctx = context(root)
    knob = KNOBS["uncore_max_freq"]
    assert knob.availability(ctx) is None
    assert [p.parent.name for p in knob.places(ctx)] == ["uncore00", "uncore01"]
    builder = LaunchBuilder(argv=["x"])
    knob.apply("2000000", builder, ctx)
    assert [s.path for s in builder.system_settings()] == [str(p) for p in knob.places(ctx)]


def test_debugfs_without_a_sched_folder_means_no_sched_debug(fast_tmp: Path) -> None:
    root = build_small("epyc", fast_tmp)
    sched = root / "sys/kernel/debug/sched"
    for child in sched.iterdir():
        child.unlink()
    sched.rmdir()
    (root / "sys/kernel/debug/tracing").mkdir()  # debugfs mounted, no scheduler folder
    assert "CONFIG_SCHED_DEBUG" in reason("sched_migration_cost_ns", root)


def test_the_host_policy_comes_before_smts_own_state(fast_tmp: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_small("xeon", fast_tmp)
    (root / "sys/devices/system/cpu/smt/control").write_text("notsupported\n")
    assert "cannot be switched" in reason("smt", root)
    monkeypatch.setenv("TUNER_SYSTEM_KNOBS", "none")
    get_settings.cache_clear()
    try:
        assert "TUNER_SYSTEM_KNOBS" in reason("smt", root)
    finally:
        monkeypatch.delenv("TUNER_SYSTEM_KNOBS")
        get_settings.cache_clear()
