"""System knobs of the hardware: prefetchers (MSRs), CPU frequency, uncore frequency, idle
states and SMT. Each probes the host's root and says why it is unavailable: no
``/dev/cpu/N/msr`` (the msr module, or a VM that hides MSRs), a CPU model whose prefetcher
register is not documented, no cpufreq driver, no ``intel_uncore_frequency``, no cpuidle.

Prefetchers: Intel's ``MSR_MISC_FEATURE_CONTROL`` (0x1A4) on the family-6 cores the SDM and
Intel's prefetcher disclosure list with the classic layout (bit 0 L2 streamer, 1 L2
adjacent line, 2 DCU streamer, 3 DCU IP), and AMD's ``PrefetchControl`` (0xC0000108) on
families 19h and 1Ah (bit 0 L1 stream, 1 L1 stride, 2 L1 region, 3 L2 stream, 5 L2
up/down). A set bit disables the prefetcher on both; the knobs speak ``on``/``off``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuner.execution.launch import LaunchBuilder
from tuner.execution.system_settings import SystemSetting, read_msr, read_text
from tuner.knobs.base import UNSET, ChoiceDomain, Domain, KnobContext
from tuner.knobs.system import FileKnob, SystemKnob, Words

CPU = "sys/devices/system/cpu"
INTEL_MISC_FEATURE_CONTROL = 0x1A4
AMD_PREFETCH_CONTROL = 0xC0000108

#: Family-6 Intel models whose 0x1A4 has the classic four prefetcher bits (Nehalem to
#: Granite Rapids; hybrid client parts and Atom cores use another layout and are left out).
INTEL_PREFETCH_MODELS = frozenset({
    0x1A, 0x1E, 0x1F, 0x2E, 0x25, 0x2C, 0x2F,  # Nehalem, Westmere
    0x2A, 0x2D, 0x3A, 0x3E,  # Sandy Bridge, Ivy Bridge
    0x3C, 0x3F, 0x45, 0x46, 0x3D, 0x47, 0x4F, 0x56,  # Haswell, Broadwell
    0x4E, 0x5E, 0x55, 0x8E, 0x9E, 0xA5, 0xA6,  # Skylake (SP: Cascade/Cooper Lake), Coffee
    0x6A, 0x6C, 0x7D, 0x7E, 0x8C, 0x8D, 0xA7,  # Ice Lake (SP), Tiger Lake, Rocket Lake
    0x8F, 0xCF, 0xAD, 0xAE,  # Sapphire, Emerald, Granite Rapids
})
AMD_PREFETCH_FAMILIES = frozenset({0x19, 0x1A})


@dataclass(frozen=True)
class CpuIdentity:
    vendor: str  # GenuineIntel, AuthenticAMD, ...
    family: int
    model: int
    hypervisor: bool

    def describe(self) -> str:
        return f"{self.vendor} family {self.family:#x} model {self.model:#x}"

    @property
    def prefetch_register(self) -> int | None:
        if self.vendor == "GenuineIntel" and self.family == 6 \
                and self.model in INTEL_PREFETCH_MODELS:
            return INTEL_MISC_FEATURE_CONTROL
        if self.vendor == "AuthenticAMD" and self.family in AMD_PREFETCH_FAMILIES:
            return AMD_PREFETCH_CONTROL
        return None


def cpu_identity(root: Path) -> CpuIdentity:
    fields: dict[str, str] = {}
    try:
        text = (root / "proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if not line.strip():
            break  # the first CPU is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())

    def number(key: str) -> int:
        try:
            return int(fields.get(key, "-1"))
        except ValueError:
            return -1

    return CpuIdentity(vendor=fields.get("vendor_id", "unknown"), family=number("cpu family"),
                       model=number("model"),
                       hypervisor="hypervisor" in fields.get("flags", "").split())


class PrefetchKnob(SystemKnob):
    """One hardware prefetcher, on or off on every CPU (``bits``: vendor -> bit)."""

    form = "msr"
    allowed = ("on", "off")
    bool_words = ("off", "on")

    def __init__(self, *, name: str, summary: str, bits: dict[str, int]) -> None:
        self.name = name
        self.summary = summary
        self.bits = bits

    def _register_and_bit(self, ctx: KnobContext) -> tuple[int, int] | None:
        identity = cpu_identity(ctx.host.root)
        register = identity.prefetch_register
        if register is None or identity.vendor not in self.bits:
            return None
        return register, self.bits[identity.vendor]

    def places(self, ctx: KnobContext) -> list[Path]:
        if self._register_and_bit(ctx) is None:
            return []
        files = [ctx.host.root / f"dev/cpu/{cpu.id}/msr" for cpu in ctx.host.topology.cpus]
        return files if files and all(f.exists() for f in files) else []

    def why_missing(self, ctx: KnobContext) -> str:
        identity = cpu_identity(ctx.host.root)
        if identity.prefetch_register is None:
            return (f"unknown CPU model for prefetcher control ({identity.describe()}): no "
                    "documented prefetcher register")
        if identity.vendor not in self.bits:
            return f"{identity.vendor} CPUs have no {self.name.removeprefix('prefetch_')} " \
                   "prefetcher switch"
        vm = ("; this is a virtual machine (hypervisor flag): the hypervisor keeps the MSRs"
              if identity.hypervisor else "")
        return (f"no {ctx.host.root / 'dev/cpu/0/msr'}: load the msr module "
                f"(modprobe msr){vm}")

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return ChoiceDomain(("on", "off"))

    def current(self, ctx: KnobContext) -> str | None:
        found = self._register_and_bit(ctx)
        places = self.places(ctx)
        if found is None or not places:
            return None
        register, bit = found
        try:
            return "off" if read_msr(str(places[0]), register) >> bit & 1 else "on"
        except OSError:
            return None

    def apply(self, value: object, builder: LaunchBuilder, ctx: KnobContext) -> None:
        found = self._register_and_bit(ctx)
        if value == UNSET or found is None:
            return
        register, bit = found
        mask = 1 << bit
        bits = mask if value == "off" else 0
        builder.change_system(self.name, [
            SystemSetting(knob=self.name, path=str(place), value=f"{bits:#x}", form="msr",
                          msr=register, mask=mask) for place in self.places(ctx)])


def prefetch_knobs() -> list[SystemKnob]:
    intel, amd = "GenuineIntel", "AuthenticAMD"
    return [
        PrefetchKnob(name="prefetch_l2_stream", bits={intel: 0, amd: 3},
                     summary="the L2 streaming prefetcher (Intel's L2 hardware prefetcher)"),
        PrefetchKnob(name="prefetch_l2_adjacent", bits={intel: 1},
                     summary="Intel's L2 adjacent cache line prefetcher (128-byte pairs)"),
        PrefetchKnob(name="prefetch_l1_stream", bits={intel: 2, amd: 0},
                     summary="the L1 data cache streaming prefetcher (Intel's DCU prefetcher)"),
        PrefetchKnob(name="prefetch_l1_ip", bits={intel: 3},
                     summary="Intel's DCU IP (instruction-pointer stride) prefetcher"),
        PrefetchKnob(name="prefetch_l1_stride", bits={amd: 1},
                     summary="AMD's L1 stride prefetcher"),
        PrefetchKnob(name="prefetch_l1_region", bits={amd: 2},
                     summary="AMD's L1 region prefetcher"),
        PrefetchKnob(name="prefetch_l2_updown", bits={amd: 5},
                     summary="AMD's L2 up/down prefetcher"),
    ]


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
            bounds = self.limits(ctx)
            if bounds is None:
                return ChoiceDomain((str(self.current(ctx)),))
            low, high = bounds
            middle = (low + high) // 2 // 100000 * 100000
            return ChoiceDomain(tuple(dict.fromkeys(str(v) for v in (low, middle, high))))
        available = self.available(ctx)
        words = [w for w in self.auto_words if w in available] or available
        return ChoiceDomain(tuple(words))

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        if self.numeric:
            bounds = self.limits(ctx)
            if not value.isdigit():
                return f"expected a frequency in kHz, got {value!r}"
            if bounds is not None and not bounds[0] <= int(value) <= bounds[1]:
                return f"{value} kHz is outside this CPU's {bounds[0]}..{bounds[1]} kHz"
            return None
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
        vendor = cpu_identity(ctx.host.root).vendor
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
        bounds = self.limits(ctx)
        if bounds is None:
            return ChoiceDomain((str(self.current(ctx)),))
        low, high = bounds
        middle = (low + high) // 2 // 100000 * 100000
        return ChoiceDomain(tuple(dict.fromkeys(str(v) for v in (low, middle, high))))

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        bounds = self.limits(ctx)
        if not value.isdigit():
            return f"expected a frequency in kHz, got {value!r}"
        if bounds is not None and not bounds[0] <= int(value) <= bounds[1]:
            return f"{value} kHz is outside the uncore's {bounds[0]}..{bounds[1]} kHz"
        return None


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
