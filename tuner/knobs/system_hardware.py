"""System knobs of the hardware: the prefetchers (``prefetch``), CPU frequency, uncore
frequency, idle states and SMT. Each probes the host's root and says why it is unavailable:
no cpufreq driver (a VM, or the firmware controls frequency), no ``intel_uncore_frequency``,
no cpuidle states, SMT that cannot be switched.
"""

from __future__ import annotations

from pathlib import Path

from tuner.execution.launch import LaunchBuilder
from tuner.execution.system_settings import SystemSetting, read_text
from tuner.knobs.base import UNSET, ChoiceDomain, Domain, KnobContext
from tuner.knobs.prefetch import cpu_identity, prefetch_knobs
from tuner.knobs.system import FileKnob, SystemKnob, Words

CPU = "sys/devices/system/cpu"


def frequency_domain(bounds: tuple[int, int] | None, current: str | None) -> Domain:
    """``auto`` for a frequency (kHz): the lowest, the middle (rounded down to 100 MHz) and
    the highest of ``bounds``; without bounds, the current value alone."""
    if bounds is None:
        return ChoiceDomain((str(current),))
    low, high = bounds
    middle = (low + high) // 2 // 100000 * 100000
    return ChoiceDomain(tuple(dict.fromkeys(str(v) for v in (low, middle, high))))


def frequency_refusal(value: str, bounds: tuple[int, int] | None, whose: str) -> str | None:
    """Why ``value`` is not a frequency inside ``bounds`` (kHz); None when it is."""
    if not value.isdigit():
        return f"expected a frequency in kHz, got {value!r}"
    if bounds is not None and not bounds[0] <= int(value) <= bounds[1]:
        return f"{value} kHz is outside {whose} {bounds[0]}..{bounds[1]} kHz"
    return None


class PolicyKnob(SystemKnob):
    """A cpufreq file of every policy (``cpufreq/policyN/FILE``)."""

    def __init__(self, *, name: str, file: str, summary: str, numeric: bool = False,
                 choices_file: str | None = None, auto_words: tuple[str, ...] = ()) -> None:
        self.name = name
        self.file = file
        self.summary = summary
        self.numeric = numeric
        self.choices_file = choices_file
        self.auto_words = auto_words

    def _policies(self, ctx: KnobContext) -> list[Path]:
        return sorted((ctx.host.root / CPU / "cpufreq").glob("policy[0-9]*"),
                      key=lambda p: int(p.name[6:]))

    def places(self, ctx: KnobContext) -> list[Path]:
        files = [p / self.file for p in self._policies(ctx)]
        return files if files and all(f.exists() for f in files) else []

    def why_missing(self, ctx: KnobContext) -> str:
        if not self._policies(ctx):
            return (f"no cpufreq driver ({ctx.host.root / CPU / 'cpufreq/policy0'} is "
                    "missing: a VM, or the firmware controls the frequency)")
        return f"the cpufreq driver has no {self.file}"

    def _read(self, ctx: KnobContext, name: str) -> str:
        policies = self._policies(ctx)
        try:
            return read_text(str(policies[0] / name)) if policies else ""
        except OSError:
            return ""

    def available(self, ctx: KnobContext) -> list[str]:
        return self._read(ctx, self.choices_file).split() if self.choices_file else []

    def limits(self, ctx: KnobContext) -> tuple[int, int] | None:
        low, high = self._read(ctx, "cpuinfo_min_freq"), self._read(ctx, "cpuinfo_max_freq")
        return (int(low), int(high)) if low.isdigit() and high.isdigit() else None

    def auto_domain(self, ctx: KnobContext) -> Domain:
        if self.numeric:
            return frequency_domain(self.limits(ctx), self.current(ctx))
        available = self.available(ctx)
        words = [w for w in self.auto_words if w in available] or available
        return ChoiceDomain(tuple(words))

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        if self.numeric:
            return frequency_refusal(value, self.limits(ctx), "this CPU's")
        available = self.available(ctx)
        if available and value not in available:
            return f"expected one of {available} (this host's {self.choices_file})"
        return None


class TurboKnob(SystemKnob):
    """Turbo/boost: ``intel_pstate/no_turbo`` (inverted) or ``cpufreq/boost``."""

    name = "turbo"
    summary = "turbo (boost) frequencies on or off"
    allowed = ("on", "off")
    bool_words = ("off", "on")

    def _place(self, ctx: KnobContext) -> tuple[Path, bool] | None:
        for file, inverted in (("intel_pstate/no_turbo", True), ("cpufreq/boost", False)):
            place = ctx.host.root / CPU / file
            if place.exists():
                return place, inverted
        return None

    def places(self, ctx: KnobContext) -> list[Path]:
        found = self._place(ctx)
        return [found[0]] if found else []

    def why_missing(self, ctx: KnobContext) -> str:
        return (f"no {ctx.host.root / CPU / 'intel_pstate/no_turbo'} nor cpufreq/boost (no "
                "cpufreq driver that exposes turbo)")

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return ChoiceDomain(("on", "off"))

    def current(self, ctx: KnobContext) -> str | None:
        found = self._place(ctx)
        if found is None:
            return None
        try:
            bit = read_text(str(found[0])) == "1"
        except OSError:
            return None
        return "off" if bit == found[1] else "on"

    def setting_for(self, value: str, place: Path) -> SystemSetting:
        inverted = place.name == "no_turbo"
        bit = (value == "off") if inverted else (value == "on")
        return SystemSetting(knob=self.name, path=str(place), value="1" if bit else "0")


class UncoreKnob(FileKnob):
    """Intel's uncore frequency limit of every package/die (``intel_uncore_frequency``)."""

    def __init__(self, *, name: str, file: str, summary: str) -> None:
        super().__init__(name=name, path=file, summary=summary,
                         words=Words(auto=(), numeric=True))
        self.file = file

    def _dies(self, ctx: KnobContext) -> list[Path]:
        """``package_XX_die_YY`` (the MSR interface) or ``uncoreNN`` (TPMI, kernel 6.5+:
        Granite Rapids and later), each with the same frequency files."""
        folder = ctx.host.root / CPU / "intel_uncore_frequency"
        return sorted([*folder.glob("package_*_die_*"), *folder.glob("uncore[0-9]*")])

    def places(self, ctx: KnobContext) -> list[Path]:
        return [die / self.file for die in self._dies(ctx) if (die / self.file).exists()]

    def why_missing(self, ctx: KnobContext) -> str:
        vendor = cpu_identity(ctx.host.topology).vendor
        if vendor != "GenuineIntel":
            return f"{vendor} CPUs have no uncore frequency control in sysfs"
        return (f"no {ctx.host.root / CPU / 'intel_uncore_frequency'} (modprobe "
                "intel-uncore-frequency; not exposed in a VM)")

    def limits(self, ctx: KnobContext) -> tuple[int, int] | None:
        dies = self._dies(ctx)
        try:
            return (int(read_text(str(dies[0] / "initial_min_freq_khz"))),
                    int(read_text(str(dies[0] / "initial_max_freq_khz"))))
        except (IndexError, OSError, ValueError):
            return None

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return frequency_domain(self.limits(ctx), self.current(ctx))

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        return frequency_refusal(value, self.limits(ctx), "the uncore's")


class IdleStateKnob(SystemKnob):
    """The deepest idle state CPUs may enter: states deeper than the chosen one are disabled
    (``cpuN/cpuidle/stateK/disable``) on every CPU."""

    name = "idle_state_limit"
    summary = ("the deepest C-state CPUs may enter (deeper ones disabled): shallower states "
               "wake faster and keep caches warm, at a power cost")

    def _states(self, ctx: KnobContext, cpu: int) -> list[Path]:
        folder = ctx.host.root / CPU / f"cpu{cpu}" / "cpuidle"
        return sorted(folder.glob("state[0-9]*"), key=lambda p: int(p.name[5:]))

    def names(self, ctx: KnobContext) -> list[str]:
        cpus = ctx.host.topology.cpus
        if not cpus:
            return []
        out = []
        for state in self._states(ctx, cpus[0].id):
            try:
                out.append(read_text(str(state / "name")))
            except OSError:
                return []
        return out

    def places(self, ctx: KnobContext) -> list[Path]:
        files = [state / "disable" for cpu in ctx.host.topology.cpus
                 for state in self._states(ctx, cpu.id)]
        return files if len(self.names(ctx)) > 1 and all(f.exists() for f in files) else []

    def why_missing(self, ctx: KnobContext) -> str:
        return (f"no cpuidle states under {ctx.host.root / CPU / 'cpu0/cpuidle'} (no cpuidle "
                "driver, or a single state: nothing to limit)")

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return ChoiceDomain(tuple(self.names(ctx)))

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        names = self.names(ctx)
        return None if value in names else f"expected one of this host's states {names}"

    def current(self, ctx: KnobContext) -> str | None:
        cpus = ctx.host.topology.cpus
        if not cpus:
            return None
        deepest = None
        for state in self._states(ctx, cpus[0].id):
            try:
                if read_text(str(state / "disable")) == "0":
                    deepest = read_text(str(state / "name"))
            except OSError:
                return None
        return deepest

    def apply(self, value: object, builder: LaunchBuilder, ctx: KnobContext) -> None:
        names = self.names(ctx)
        if value == UNSET or str(value) not in names:
            return  # the domain holds only this host's states; another host's: left alone
        limit = names.index(str(value))
        builder.change_system(self.name, [
            SystemSetting(knob=self.name, path=str(state / "disable"),
                          value="1" if index > limit else "0")
            for cpu in ctx.host.topology.cpus
            for index, state in enumerate(self._states(ctx, cpu.id))])


class SmtKnob(FileKnob):
    """SMT (hyper-threading) on or off for the whole machine: disruptive (sibling CPUs go
    offline, the thread knobs' domains were derived with them), so off the auto spaces."""

    disruptive = True

    def __init__(self) -> None:
        super().__init__(name="smt", path=f"{CPU}/smt/control",
                         words=Words(allowed=("on", "off"), bool_words=("off", "on"),
                                     auto=("on", "off")),
                         summary="simultaneous multithreading on or off (disruptive: takes "
                                 "sibling CPUs offline; never on auto)",
                         missing="a kernel without SMT control")

    def availability(self, ctx: KnobContext) -> str | None:
        reason = super().availability(ctx)
        if reason is not None or not ctx.host.local:
            return reason
        current = self.current(ctx)
        if current is not None and current not in ("on", "off"):
            return f"SMT control reads {current!r}: it cannot be switched here"
        return None


def hardware_knobs() -> list[SystemKnob]:
    return [
        *prefetch_knobs(),
        PolicyKnob(name="cpu_governor", file="scaling_governor",
                   choices_file="scaling_available_governors",
                   auto_words=("performance", "powersave", "schedutil"),
                   summary="the cpufreq governor of every CPU"),
        PolicyKnob(name="cpu_min_freq", file="scaling_min_freq", numeric=True,
                   summary="the lowest frequency cpufreq may pick (kHz)"),
        PolicyKnob(name="cpu_max_freq", file="scaling_max_freq", numeric=True,
                   summary="the highest frequency cpufreq may pick (kHz)"),
        PolicyKnob(name="energy_perf_preference", file="energy_performance_preference",
                   choices_file="energy_performance_available_preferences",
                   auto_words=("performance", "balance_performance", "balance_power"),
                   summary="the energy-performance preference (EPP) hint of every CPU"),
        TurboKnob(),
        UncoreKnob(name="uncore_min_freq", file="min_freq_khz",
                   summary="the lowest uncore (mesh, LLC) frequency (kHz), per package"),
        UncoreKnob(name="uncore_max_freq", file="max_freq_khz",
                   summary="the highest uncore (mesh, LLC) frequency (kHz), per package"),
        IdleStateKnob(),
        SmtKnob(),
    ]
