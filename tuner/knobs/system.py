"""System knobs: settings of the whole machine (memory, scheduler; the hardware ones are in
``system_hardware``), changed for a trial and put back after it.

Unlike the other families, a system knob does not write the trial's environment: it asks
for ``SystemSetting`` changes (``LaunchBuilder.change_system``) that the system backend
applies under the exclusive host lock, journaled (``tuner.execution.system_journal``).
Each knob probes its files under the host's root and says why it is unavailable (the file is
missing, with what would provide it; not root; a read-only mount; the host's
``TUNER_SYSTEM_KNOBS`` policy). Its default is the machine's current value, read when the
space is built, so the baselines run the machine as it is; its domains are strings (the
file's own words), and a numeric range is accepted where the file takes a number.
"""

from __future__ import annotations

import os
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.execution.system_settings import Form, SystemSetting, read_text, selected_choice
from tuner.knobs.base import UNSET, ChoiceDomain, ChoiceKnob, Domain, DomainError, KnobContext
from tuner.settings import get_settings
from tuner.spec import limits
from tuner.spec.models import KnobSpec

#: The family name every system knob has (screening measures each one; the service asks
#: for the admin token; the journal keeps what they change).
SYSTEM_FAMILY = "system"

THP = "sys/kernel/mm/transparent_hugepage"

#: What a value written to a system file may hold (the files' own words: governors, idle
#: state names such as ``haltpoll idle``, numbers).
SAFE_WORD = re.compile(r"[A-Za-z0-9_+.\- ]{1,64}")


def writable(path: Path) -> str | None:
    """None when this process can write ``path``, else why not."""
    if not path.exists():
        return f"{path} does not exist"
    if not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222:
        if os.geteuid() != 0:
            return f"needs root (or write access to {path}; tuner runs as uid {os.geteuid()})"
        return f"{path} is read-only here (a read-only /sys or /proc: a container?)"
    return None


def kernel_release(root: Path) -> tuple[int, int]:
    """The running kernel's (major, minor), from ``proc/sys/kernel/osrelease`` under root."""
    try:
        text = (root / "proc/sys/kernel/osrelease").read_text()
    except OSError:
        text = os.uname().release if root == Path("/") else "0.0"
    parts = text.strip().split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


class SystemKnob(ChoiceKnob):
    """A knob over the words of one or more system files (all written with one value).

    Subclasses say where (``places``: the files on this host, empty when there are none,
    with ``why_missing`` saying why), what ``auto`` means, and may override ``setting_for``
    (an MSR knob writes bits, not words)."""

    family = SYSTEM_FAMILY
    form: Form = "text"
    #: True for a knob that changes the machine's shape (SMT takes CPUs offline): never in a
    #: study unless named with explicit values.
    disruptive = False
    #: Whether a numeric range (low/high/step) is accepted, expanded to its words.
    numeric = False

    @abstractmethod
    def places(self, ctx: KnobContext) -> list[Path]:
        """The files this knob writes on this host (empty: unavailable, ``why_missing``)."""

    @abstractmethod
    def why_missing(self, ctx: KnobContext) -> str:
        """Why ``places`` is empty here: what would provide the files."""

    def availability(self, ctx: KnobContext) -> str | None:
        if not ctx.host.local:
            return None  # a host not known here: its worker checks
        settings = get_settings()
        if not settings.system_knob_allowed(self.name):
            return (f"this host does not allow it (TUNER_SYSTEM_KNOBS={settings.system_knobs!r}"
                    f" does not name {self.name})")
        places = self.places(ctx)
        if not places:
            return self.why_missing(ctx)
        for place in places:
            problem = writable(place)
            if problem is not None:
                return problem
        return None

    def current(self, ctx: KnobContext) -> str | None:
        """The value in force now (of the first place), or None when it cannot be read."""
        places = self.places(ctx)
        if not places:
            return None
        try:
            text = read_text(str(places[0]))
        except OSError:
            return None
        return selected_choice(text) if self.form == "selected" else text

    def default_value(self, ctx: KnobContext) -> Any:
        """The machine as it is: the current value (the baselines change nothing)."""
        if not ctx.host.local or self.availability(ctx) is not None:
            return UNSET
        current = self.current(ctx)
        return current if current is not None else UNSET

    def setting_for(self, value: str, place: Path) -> SystemSetting:
        return SystemSetting(knob=self.name, path=str(place), value=value, form=self.form)

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value == UNSET:
            return
        builder.change_system(self.name, [self.setting_for(str(value), place)
                                          for place in self.places(ctx)])

    def domain(self, spec: KnobSpec, ctx: KnobContext) -> Domain:
        if spec.kind == "auto" and self.disruptive:
            raise DomainError(f"{self.name} changes the machine's shape; it is never tuned "
                              "on auto: list the values to try")
        if spec.kind == "range" and self.numeric:
            assert spec.low is not None and spec.high is not None
            values = list(range(spec.low, spec.high + 1, spec.step or 1))
            if len(values) > limits.MAX_CHOICES:
                raise DomainError(f"the range holds {len(values)} values; at most "
                                  f"{limits.MAX_CHOICES} (give a larger step)", field="step")
            words = ChoiceDomain(tuple(str(v) for v in values))
            for value in words.choices:
                problem = self.refuse(value, ctx)
                if problem is not None:
                    raise DomainError(problem, field="high")
            return words
        domain = super().domain(spec, ctx)
        for value in domain.values():
            if not SAFE_WORD.fullmatch(str(value)):
                raise DomainError(f"{value!r} is not a value a system file takes (letters, "
                                  "digits, spaces and _+.- only, at most 64)",
                                  field=spec.kind)
        return domain


@dataclass(frozen=True)
class Words:
    """What a file knob's file takes: ``auto``'s choices, the whole vocabulary (None: any
    word), YAML's false/true as words, and whether a numeric range is accepted."""

    auto: tuple[str, ...]
    allowed: tuple[str, ...] | None = None
    bool_words: tuple[str, str] | None = None
    numeric: bool = False


class FileKnob(SystemKnob):
    """One file under the root with a fixed vocabulary (or numbers)."""

    def __init__(self, *, name: str, path: str, summary: str, words: Words,
                 form: Form = "text", missing: str = "") -> None:
        self.name = name
        self.path = path
        self.summary = summary
        self.auto = words.auto
        self.allowed = words.allowed
        self.bool_words = words.bool_words
        self.numeric = words.numeric
        self.form = form
        self.missing = missing

    def places(self, ctx: KnobContext) -> list[Path]:
        place = ctx.host.root / self.path
        return [place] if place.exists() else []

    def why_missing(self, ctx: KnobContext) -> str:
        return f"no {ctx.host.root / self.path}" + (f" ({self.missing})" if self.missing else "")

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return ChoiceDomain(self.auto)

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        if self.numeric and not value.isdigit():
            return f"expected a non-negative integer, got {value!r}"
        return None


class SchedDebugKnob(FileKnob):
    """A CFS/EEVDF tunable of ``/sys/kernel/debug/sched`` (kernel 5.13 and later; earlier
    kernels had it as ``/proc/sys/kernel/sched_*``), by kernel version."""

    def __init__(self, *, name: str, file: str, summary: str, auto: Sequence[str],
                 kernels: str) -> None:
        super().__init__(name=name, path=f"sys/kernel/debug/sched/{file}", summary=summary,
                         words=Words(auto=tuple(auto), numeric=True))
        self.file = file
        self.kernels = kernels

    def places(self, ctx: KnobContext) -> list[Path]:
        debug = ctx.host.root / "sys/kernel/debug/sched" / self.file
        if debug.exists():
            return [debug]
        legacy = ctx.host.root / "proc/sys/kernel" / f"sched_{self.file}"
        return [legacy] if legacy.exists() else []

    def why_missing(self, ctx: KnobContext) -> str:
        major, minor = kernel_release(ctx.host.root)
        debugfs = ctx.host.root / "sys/kernel/debug"
        if (major, minor) < (5, 13) or (debugfs / "sched").is_dir():
            # before 5.13 the tunables were sysctls (missing here too); after, the kernel
            # lacks this one
            return f"kernel {major}.{minor} has no sched/{self.file} ({self.kernels})"
        if not debugfs.is_dir() or not any(debugfs.iterdir()):
            return (f"debugfs is not mounted at {debugfs} "
                    "(mount -t debugfs none /sys/kernel/debug)")
        return (f"kernel {major}.{minor} has no scheduler debug directory ({debugfs / 'sched'}:"
                " a kernel built without CONFIG_SCHED_DEBUG)")


def memory_knobs() -> list[SystemKnob]:
    return [
        FileKnob(name="thp_enabled", path=f"{THP}/enabled", form="selected",
                 words=Words(allowed=("always", "madvise", "never"),
                             auto=("always", "madvise", "never")),
                 summary="transparent huge pages: always, only where madvise asks, or never",
                 missing="a kernel without transparent huge pages"),
        FileKnob(name="thp_defrag", path=f"{THP}/defrag", form="selected",
                 words=Words(allowed=("always", "defer", "defer+madvise", "madvise", "never"),
                             auto=("always", "defer+madvise", "madvise", "never")),
                 summary="how hard the kernel compacts memory to make a huge page",
                 missing="a kernel without transparent huge pages"),
        FileKnob(name="numa_balancing", path="proc/sys/kernel/numa_balancing",
                 words=Words(allowed=("0", "1"), bool_words=("0", "1"), auto=("0", "1")),
                 summary="automatic NUMA balancing: the kernel migrates pages and tasks "
                         "between nodes (1) or not (0)",
                 missing="a kernel built without CONFIG_NUMA_BALANCING"),
        FileKnob(name="swappiness", path="proc/sys/vm/swappiness",
                 words=Words(auto=("1", "10", "60"), numeric=True),
                 summary="how readily the kernel swaps anonymous memory (0-200)"),
    ]


def scheduler_knobs() -> list[SystemKnob]:
    return [
        FileKnob(name="sched_autogroup", path="proc/sys/kernel/sched_autogroup_enabled",
                 words=Words(allowed=("0", "1"), bool_words=("0", "1"), auto=("0", "1")),
                 summary="group tasks by session for fairness (1) or schedule each task on "
                         "its own (0)",
                 missing="a kernel built without CONFIG_SCHED_AUTOGROUP"),
        SchedDebugKnob(name="sched_migration_cost_ns", file="migration_cost_ns",
                       auto=("100000", "500000", "5000000"), kernels="every kernel with CFS",
                       summary="how long a task stays cache-hot (ns): larger keeps tasks "
                               "where they ran"),
        SchedDebugKnob(name="sched_base_slice_ns", file="base_slice_ns",
                       auto=("750000", "3000000", "10000000"),
                       kernels="EEVDF, kernel 6.6 and later",
                       summary="EEVDF's base time slice (ns)"),
        SchedDebugKnob(name="sched_wakeup_granularity_ns", file="wakeup_granularity_ns",
                       auto=("1000000", "4000000", "15000000"),
                       kernels="CFS before kernel 6.6; EEVDF replaced it with base_slice_ns",
                       summary="CFS's wakeup preemption granularity (ns): larger lets a "
                               "running task run on"),
    ]


def system_status(ctx: KnobContext, knobs: Sequence[SystemKnob]) -> list[tuple[str, str, str]]:
    """For ``tuner doctor``: each knob's name, current value (or ``-``) and ``writable`` or
    why it is not."""
    rows = []
    for knob in knobs:
        reason = knob.availability(ctx)
        current = knob.current(ctx)
        state = "writable" if reason is None else f"unavailable: {reason}"
        if knob.disruptive and reason is None:
            state += " (disruptive: only with listed values)"
        rows.append((knob.name, current if current is not None else "-", state))
    return rows
