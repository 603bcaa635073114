"""Fake root trees (``sys``, ``proc``, ``dev``) of two real servers, for the system knobs.

``xeon_2s`` is a 2-socket Intel Xeon Platinum 8280 (Cascade Lake-SP) and ``epyc_2s`` a
2-socket AMD EPYC 7543 (Milan), each as a root directory that ``tuner.host.probe_host``
reads and the system knobs write under. The trees are built from the kernel's documented
layouts of these machines (``Documentation/ABI`` for cpu topology, cpufreq, intel_pstate,
intel_uncore_frequency, cpuidle and SMT control; ``Documentation/admin-guide/mm/transhuge``;
the msr driver's ``/dev/cpu/N/msr``, 8 bytes at the register's address) and from the
vendors' published figures (frequencies, the idle-state latencies of ``intel_idle``'s
Skylake-SP table), not captured from the machines: core ids are numbered 0..n-1 in each
socket, where real Xeons leave gaps, and AMD's PrefetchControl holds 0x3C0 (bits no knob
owns set, every prefetcher on), a value these trees pick, not one read from a Milan.

Every file holds its value and a newline, as sysfs serves it; each ``/dev/cpu/N/msr`` is a
sparse file as long as the register's address plus 8 bytes, holding the register there
(AMD's 0xC0000108 makes it about 3 GB long, a few KB on disk). ``Parts`` leaves parts out
(no msr module, no cpufreq driver, ...) so tests can reach each knob's unavailable path;
``machine`` swaps the CPU's identity (``dataclasses.replace`` of ``XEON_8280`` or
``EPYC_7543``: another model, a hypervisor flag, another kernel).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CPU = "sys/devices/system/cpu"

#: Intel's MSR_MISC_FEATURE_CONTROL and AMD's PrefetchControl (the prefetcher registers).
INTEL_PREFETCH_REGISTER = 0x1A4
AMD_PREFETCH_REGISTER = 0xC0000108


@dataclass(frozen=True, kw_only=True)
class IdleState:
    """One ``cpuN/cpuidle/stateK``: name, description and exit latency (microseconds)."""

    name: str
    desc: str
    latency: int


@dataclass(frozen=True, kw_only=True)
class Machine:
    """What a fake tree describes: the CPU's identity and topology, its cpufreq driver,
    turbo switch, uncore limits, idle states, prefetcher register and kernel."""

    vendor: str
    family: int
    model: int
    stepping: int
    model_name: str
    flags: tuple[str, ...]
    #: Adds the ``hypervisor`` flag (a virtual machine).
    hypervisor: bool = False
    sockets: int = 2
    cores_per_socket: int
    threads_per_core: int = 2
    #: cpufreq: driver, governors (the current one first in ``governor``), limits (kHz).
    driver: str
    governor: str
    governors: tuple[str, ...]
    cpuinfo_min_freq: int
    cpuinfo_max_freq: int
    available_frequencies: tuple[int, ...] = ()
    #: The energy-performance preference and its choices; None: the driver has no EPP.
    epp: str | None = None
    epp_choices: tuple[str, ...] = ()
    base_frequency: int | None = None
    #: ``intel_pstate`` (``intel_pstate/no_turbo``) or ``boost`` (``cpufreq/boost``).
    turbo: str
    #: intel_uncore_frequency's initial (min, max) kHz of every package/die; None: none.
    uncore: tuple[int, int] | None = None
    idle_driver: str
    idle_states: tuple[IdleState, ...]
    #: The prefetcher register's address and the value it holds (None: no register).
    prefetch_register: int | None
    prefetch_value: int = 0
    osrelease: str = "6.8.0-45-generic"


#: Intel Xeon Platinum 8280: 28 cores at 2.7 GHz (turbo 4.0 GHz), uncore 1.2-2.4 GHz.
XEON_8280 = Machine(
    vendor="GenuineIntel", family=6, model=0x55, stepping=7,
    model_name="Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz",
    flags=("fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr",
           "pge", "mca", "cmov", "pat", "pse36", "clflush", "dts", "acpi", "mmx", "fxsr",
           "sse", "sse2", "ss", "ht", "tm", "pbe", "syscall", "nx", "pdpe1gb", "rdtscp", "lm",
           "constant_tsc", "art", "arch_perfmon", "pebs", "bts", "rep_good", "nopl",
           "xtopology", "nonstop_tsc", "cpuid", "aperfmperf", "pni", "pclmulqdq", "dtes64",
           "monitor", "ds_cpl", "vmx", "smx", "est", "tm2", "ssse3", "sdbg", "fma", "cx16",
           "xtpr", "pdcm", "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt",
           "tsc_deadline_timer", "aes", "xsave", "avx", "f16c", "rdrand", "lahf_lm", "abm",
           "3dnowprefetch", "cpuid_fault", "epb", "cat_l3", "cdp_l3", "invpcid_single",
           "intel_ppin", "ssbd", "mba", "ibrs", "ibpb", "stibp", "ibrs_enhanced",
           "tpr_shadow", "flexpriority", "ept", "vpid", "ept_ad", "fsgsbase", "tsc_adjust",
           "bmi1", "hle", "avx2", "smep", "bmi2", "erms", "invpcid", "rtm", "cqm", "mpx",
           "rdt_a", "avx512f", "avx512dq", "rdseed", "adx", "smap", "clflushopt", "clwb",
           "intel_pt", "avx512cd", "avx512bw", "avx512vl", "xsaveopt", "xsavec", "xgetbv1",
           "xsaves", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "dtherm",
           "ida", "arat", "pln", "pts", "hwp", "hwp_act_window", "hwp_epp", "hwp_pkg_req",
           "pku", "ospke", "avx512_vnni", "md_clear", "flush_l1d", "arch_capabilities"),
    cores_per_socket=28,
    driver="intel_pstate", governor="powersave", governors=("performance", "powersave"),
    cpuinfo_min_freq=1_000_000, cpuinfo_max_freq=4_000_000, base_frequency=2_700_000,
    epp="balance_performance",
    epp_choices=("default", "performance", "balance_performance", "balance_power", "power"),
    turbo="intel_pstate", uncore=(1_200_000, 2_400_000),
    idle_driver="intel_idle",
    idle_states=(IdleState(name="POLL", desc="CPUIDLE CORE POLL IDLE", latency=0),
                 IdleState(name="C1", desc="MWAIT 0x00", latency=2),
                 IdleState(name="C1E", desc="MWAIT 0x01", latency=10),
                 IdleState(name="C6", desc="MWAIT 0x20", latency=133)),
    prefetch_register=INTEL_PREFETCH_REGISTER, prefetch_value=0,  # every prefetcher on
)

#: AMD EPYC 7543: 32 cores at 2.8 GHz (boost 3.7 GHz), acpi-cpufreq, NPS1. (The brief's
#: EPYC 7763 has 64 cores a socket, 256 CPUs: the 7543 is the same family and model.)
EPYC_7543 = Machine(
    vendor="AuthenticAMD", family=0x19, model=0x01, stepping=1,
    model_name="AMD EPYC 7543 32-Core Processor",
    flags=("fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr",
           "pge", "mca", "cmov", "pat", "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "ht",
           "syscall", "nx", "mmxext", "fxsr_opt", "pdpe1gb", "rdtscp", "lm", "constant_tsc",
           "rep_good", "nopl", "nonstop_tsc", "cpuid", "extd_apicid", "aperfmperf", "rapl",
           "pni", "pclmulqdq", "monitor", "ssse3", "fma", "cx16", "pcid", "sse4_1", "sse4_2",
           "x2apic", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "lahf_lm",
           "cmp_legacy", "svm", "extapic", "cr8_legacy", "abm", "sse4a", "misalignsse",
           "3dnowprefetch", "osvw", "ibs", "skinit", "wdt", "tce", "topoext", "perfctr_core",
           "perfctr_nb", "bpext", "perfctr_llc", "mwaitx", "cpb", "cat_l3", "cdp_l3",
           "invpcid_single", "hw_pstate", "ssbd", "mba", "ibrs", "ibpb", "stibp", "vmmcall",
           "fsgsbase", "bmi1", "avx2", "smep", "bmi2", "invpcid", "cqm", "rdt_a", "rdseed",
           "adx", "smap", "clflushopt", "clwb", "sha_ni", "xsaveopt", "xsavec", "xgetbv1",
           "xsaves", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "clzero",
           "irperf", "xsaveerptr", "rdpru", "wbnoinvd", "amd_ppin", "arat", "npt", "lbrv",
           "svm_lock", "nrip_save", "tsc_scale", "vmcb_clean", "flushbyasid",
           "decodeassists", "pausefilter", "pfthreshold", "v_vmsave_vmload", "vgif",
           "v_spec_ctrl", "umip", "pku", "ospke", "vaes", "vpclmulqdq", "rdpid",
           "overflow_recov", "succor", "smca", "fsrm"),
    cores_per_socket=32,
    driver="acpi-cpufreq", governor="schedutil",
    governors=("conservative", "ondemand", "userspace", "powersave", "performance",
               "schedutil"),
    cpuinfo_min_freq=1_500_000, cpuinfo_max_freq=2_800_000,
    available_frequencies=(2_800_000, 2_100_000, 1_500_000),
    turbo="boost", uncore=None,
    idle_driver="acpi_idle",
    idle_states=(IdleState(name="POLL", desc="CPUIDLE CORE POLL IDLE", latency=0),
                 IdleState(name="C1", desc="ACPI FFH MWAIT 0x0", latency=1),
                 IdleState(name="C2", desc="ACPI IOPORT 0x814", latency=400)),
    # bits 6-9 set (no knob owns them: a write must keep them), every prefetcher (bits 0-3
    # and 5) on
    prefetch_register=AMD_PREFETCH_REGISTER, prefetch_value=0x3C0,
)


@dataclass(frozen=True, kw_only=True)
class Parts:
    """What a tree holds besides the topology, cpuinfo and the kernel's files (everything by
    default). False leaves out: ``msr`` every ``dev/cpu/N/msr`` (the msr module not
    loaded), ``cpufreq`` the cpufreq policies (no driver), ``turbo`` no_turbo/boost,
    ``uncore`` intel_uncore_frequency, ``cpuidle`` every CPU's idle states, ``debugfs`` the
    scheduler's files in ``sys/kernel/debug`` (not mounted). ``smt_control`` is what
    ``smt/control`` reads (``notsupported`` on a CPU without SMT)."""

    msr: bool = True
    cpufreq: bool = True
    turbo: bool = True
    uncore: bool = True
    cpuidle: bool = True
    debugfs: bool = True
    smt_control: str = "on"


EVERYTHING = Parts()


def xeon_2s(root: Path, machine: Machine = XEON_8280, parts: Parts = EVERYTHING) -> Path:
    """A 2-socket Xeon Platinum 8280 under ``root``: 56 cores, SMT on (112 CPUs, CPU n and
    n+56 siblings), 2 NUMA nodes, intel_pstate, intel_uncore_frequency, intel_idle."""
    return build(root, machine, parts)


def epyc_2s(root: Path, machine: Machine = EPYC_7543, parts: Parts = EVERYTHING) -> Path:
    """A 2-socket EPYC 7543 under ``root``: 64 cores, SMT on (128 CPUs, CPU n and n+64
    siblings), 2 NUMA nodes (NPS1), acpi-cpufreq with boost, acpi_idle."""
    return build(root, machine, parts)


def build(root: Path, machine: Machine, parts: Parts = EVERYTHING) -> Path:
    """Write ``machine``'s tree, with ``parts``, under ``root`` and return ``root``."""
    cpus = _topology(root, machine)
    _cpuinfo(root, machine)
    _kernel(root, machine, debugfs=parts.debugfs)
    _write(root / CPU / "smt/control", parts.smt_control)
    _write(root / CPU / "smt/active", "1" if parts.smt_control == "on" else "0")
    if parts.cpufreq:
        _cpufreq(root, machine, cpus)
    if parts.turbo:
        if machine.turbo == "intel_pstate":
            pstate = root / CPU / "intel_pstate"
            _files(pstate, {"no_turbo": "0", "status": "active", "max_perf_pct": "100",
                            "min_perf_pct": str(100 * machine.cpuinfo_min_freq
                                                // machine.cpuinfo_max_freq),
                            "hwp_dynamic_boost": "0"})
        else:
            _write(root / CPU / "cpufreq/boost", "1")
    if parts.uncore and machine.uncore is not None:
        low, high = machine.uncore
        for package in range(machine.sockets):
            _files(root / CPU / f"intel_uncore_frequency/package_{package:02d}_die_00",
                   {"initial_min_freq_khz": str(low), "initial_max_freq_khz": str(high),
                    "min_freq_khz": str(low), "max_freq_khz": str(high),
                    "current_freq_khz": str((low + high) // 2)})
    if parts.cpuidle:
        _cpuidle(root, machine, cpus)
    if parts.msr and machine.prefetch_register is not None:
        for cpu in cpus:
            _msr(root / f"dev/cpu/{cpu}/msr", machine.prefetch_register,
                 machine.prefetch_value)
    return root


def logical_cpus(machine: Machine) -> int:
    return machine.sockets * machine.cores_per_socket * machine.threads_per_core


def _write(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")


def _files(folder: Path, values: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (folder / name).write_text(value + "\n")


def _cpu_list(ids: Iterable[int]) -> str:
    """The kernel's list format (``0-27,56-83``)."""
    ordered = sorted(ids)
    parts: list[str] = []
    start = previous = ordered[0]
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == previous + 1:
            previous = cpu
            continue
        parts.append(f"{start}-{previous}" if start != previous else str(start))
        if cpu is not None:
            start = previous = cpu
    return ",".join(parts)


def _place(machine: Machine, cpu: int) -> tuple[int, int, int]:
    """(thread, socket, core) of logical CPU ``cpu``: the first thread of every core on
    every socket, then the siblings, as Linux numbers them."""
    cores = machine.sockets * machine.cores_per_socket
    thread, index = divmod(cpu, cores)
    socket, core = divmod(index, machine.cores_per_socket)
    return thread, socket, core


def _topology(root: Path, machine: Machine) -> list[int]:
    cpus = list(range(logical_cpus(machine)))
    cores = machine.sockets * machine.cores_per_socket
    cpu_dir = root / CPU
    every = _cpu_list(cpus)
    _files(cpu_dir, {"online": every, "possible": every, "present": every, "offline": "",
                     "kernel_max": "8191"})
    by_socket: dict[int, list[int]] = {}
    for cpu in cpus:
        by_socket.setdefault(_place(machine, cpu)[1], []).append(cpu)
    for cpu in cpus:
        _, socket, core = _place(machine, cpu)
        siblings = [socket * machine.cores_per_socket + core + t * cores
                    for t in range(machine.threads_per_core)]
        _files(cpu_dir / f"cpu{cpu}/topology",
               {"physical_package_id": str(socket), "core_id": str(core),
                "thread_siblings_list": _cpu_list(siblings)})
    node_dir = root / "sys/devices/system/node"
    _files(node_dir, {"online": _cpu_list(by_socket), "possible": _cpu_list(by_socket)})
    for socket, members in by_socket.items():  # one node a socket (NPS1, SNC off)
        _files(node_dir / f"node{socket}", {"cpulist": _cpu_list(members)})
    return cpus


def _cpuinfo(root: Path, machine: Machine) -> None:
    flags = " ".join((*machine.flags, "hypervisor") if machine.hypervisor else machine.flags)
    mhz = (machine.base_frequency or machine.cpuinfo_max_freq) / 1000
    blocks = []
    for cpu in range(logical_cpus(machine)):
        _, socket, core = _place(machine, cpu)
        blocks.append(
            f"processor\t: {cpu}\n"
            f"vendor_id\t: {machine.vendor}\n"
            f"cpu family\t: {machine.family}\n"
            f"model\t\t: {machine.model}\n"
            f"model name\t: {machine.model_name}\n"
            f"stepping\t: {machine.stepping}\n"
            f"cpu MHz\t\t: {mhz:.3f}\n"
            f"physical id\t: {socket}\n"
            f"siblings\t: {machine.cores_per_socket * machine.threads_per_core}\n"
            f"core id\t\t: {core}\n"
            f"cpu cores\t: {machine.cores_per_socket}\n"
            f"fpu\t\t: yes\n"
            f"flags\t\t: {flags}\n"
            f"bogomips\t: {mhz * 2:.2f}\n"
            f"address sizes\t: 46 bits physical, 48 bits virtual\n\n")
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc/cpuinfo").write_text("".join(blocks))


def _kernel_version(release: str) -> tuple[int, int]:
    major, minor = release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _kernel(root: Path, machine: Machine, *, debugfs: bool) -> None:
    _files(root / "proc/sys/kernel", {"osrelease": machine.osrelease, "numa_balancing": "1",
                                       "sched_autogroup_enabled": "1"})
    _files(root / "proc/sys/vm", {"swappiness": "60"})
    _files(root / "sys/kernel/mm/transparent_hugepage",
           {"enabled": "always [madvise] never",
            "defrag": "always defer defer+madvise [madvise] never",
            "hpage_pmd_size": "2097152"})
    # the CFS/EEVDF tunables: debugfs from 5.13 (sysctls before), base_slice_ns for
    # EEVDF (6.6), which dropped latency_ns, min_granularity_ns and wakeup_granularity_ns
    version = _kernel_version(machine.osrelease)
    tunables = {"migration_cost_ns": "500000", "nr_migrate": "32"}
    if version >= (6, 6):
        tunables["base_slice_ns"] = "3000000"
    else:
        tunables |= {"latency_ns": "24000000", "min_granularity_ns": "3000000",
                     "wakeup_granularity_ns": "4000000"}
    debug = root / "sys/kernel/debug"
    debug.mkdir(parents=True, exist_ok=True)  # the mount point (empty when not mounted)
    if version < (5, 13):
        _files(root / "proc/sys/kernel", {f"sched_{k}": v for k, v in tunables.items()})
        if debugfs:  # mounted, with the scheduler's one file of those kernels
            _write(debug / "sched_features", "GENTLE_FAIR_SLEEPERS START_DEBIT")
    elif debugfs:
        _files(debug / "sched", tunables)


def _cpufreq(root: Path, machine: Machine, cpus: list[int]) -> None:
    for cpu in cpus:
        values = {
            "affected_cpus": str(cpu),
            "cpuinfo_min_freq": str(machine.cpuinfo_min_freq),
            "cpuinfo_max_freq": str(machine.cpuinfo_max_freq),
            "scaling_driver": machine.driver, "scaling_governor": machine.governor,
            "scaling_available_governors": " ".join(machine.governors),
            "scaling_min_freq": str(machine.cpuinfo_min_freq),
            "scaling_max_freq": str(machine.cpuinfo_max_freq),
        }
        if machine.available_frequencies:
            values["scaling_available_frequencies"] = " ".join(
                map(str, machine.available_frequencies))
        if machine.base_frequency is not None:
            values["base_frequency"] = str(machine.base_frequency)
        if machine.epp is not None:
            values["energy_performance_preference"] = machine.epp
            values["energy_performance_available_preferences"] = " ".join(machine.epp_choices)
        policy = root / CPU / f"cpufreq/policy{cpu}"
        _files(policy, values)
        os.symlink(f"../cpufreq/policy{cpu}", root / CPU / f"cpu{cpu}/cpufreq")


def _cpuidle(root: Path, machine: Machine, cpus: list[int]) -> None:
    _files(root / CPU / "cpuidle", {"current_driver": machine.idle_driver,
                                     "current_governor": "menu"})
    for cpu in cpus:
        for index, state in enumerate(machine.idle_states):
            _files(root / CPU / f"cpu{cpu}/cpuidle/state{index}",
                   {"name": state.name, "desc": state.desc, "latency": str(state.latency),
                    "disable": "0"})


def _msr(path: Path, register: int, value: int) -> None:
    """A sparse ``/dev/cpu/N/msr`` holding ``value`` at ``register`` (little-endian)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, register + 8)
        os.pwrite(fd, value.to_bytes(8, "little"), register)
    finally:
        os.close(fd)
