"""System knobs for the hardware prefetchers, through their model-specific registers.

Intel's ``MSR_MISC_FEATURE_CONTROL`` (0x1A4) on the family-6 cores the SDM and Intel's
prefetcher disclosure list with the classic layout (bit 0 L2 streamer, 1 L2 adjacent line,
2 DCU streamer, 3 DCU IP), and AMD's ``PrefetchControl`` (0xC0000108) on families 19h and
1Ah (bit 0 L1 stream, 1 L1 stride, 2 L1 region, 3 L2 stream, 5 L2 up/down). A set bit
disables the prefetcher on both; the knobs speak ``on``/``off`` and write every CPU's
``/dev/cpu/N/msr`` (8 bytes at the register's address; no shelling out to ``wrmsr``).
Unavailable, with the reason: no msr device (``modprobe msr``; a VM keeps the MSRs), a CPU
model whose register is not documented here, the other vendor's prefetcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuner.execution.launch import LaunchBuilder
from tuner.execution.system_settings import SystemSetting, read_msr
from tuner.host import Topology
from tuner.knobs.base import UNSET, ChoiceDomain, Domain, KnobContext
from tuner.knobs.system import SystemKnob

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


def cpu_identity(topology: Topology) -> CpuIdentity:
    """The CPU's identity as the host probe read it from /proc/cpuinfo."""
    return CpuIdentity(vendor=topology.vendor, family=topology.family,
                       model=topology.model_number, hypervisor="hypervisor" in topology.flags)


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
        identity = cpu_identity(ctx.host.topology)
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
        identity = cpu_identity(ctx.host.topology)
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
