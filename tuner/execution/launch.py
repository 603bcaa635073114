"""What a trial runs: an argument list, the environment knobs set, and the binding prefix.

Knobs write into a ``LaunchBuilder``; ``build`` fills a command's ``{knob}`` placeholders
(an argument holding one without a value is left out), appends the flags, and turns the
requested CPU and memory binding into a ``numactl`` prefix, or, where numactl is missing, a
``taskset`` prefix (CPU binding only) or an affinity the runner applies itself with
``sched_setaffinity``. Libraries that knobs preload (the OpenMP runtime, the allocator) are
joined into ``LD_PRELOAD`` in a fixed order (``PRELOAD_SLOTS``). A ``Launch`` is plain data:
it can be stored with the trial and rendered as a line a user can paste.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Formatter
from typing import Any

from tuner.execution.system_settings import SystemSetting
from tuner.host import Host, format_cpu_list
from tuner.spec.consistency import template_fields

#: What knobs may preload, in ``LD_PRELOAD`` order: the OpenMP runtime first, then the
#: allocator, the order PyTorch's launcher gives them (``torch/backends/xeon/run_cpu.py``,
#: ``_Launcher.set_multi_thread_and_allocator``: the allocator is preloaded first and
#: ``add_lib_preload("iomp5")`` then puts libiomp5 in front of it).
PRELOAD_SLOTS = ("openmp", "allocator")


@dataclass(frozen=True, kw_only=True)
class Instance:
    """One of several concurrent copies of the workload: its binding prefix (or affinity)."""

    prefix: tuple[str, ...] = ()
    affinity: tuple[int, ...] | None = None
    #: The binding as data (whatever the prefix): CPUs, and the numactl memory option.
    cpus: tuple[int, ...] | None = None
    memory: str | None = None


@dataclass(frozen=True, kw_only=True)
class Launch:
    """A fully resolved trial launch. ``env`` holds only what knobs (and the workload spec)
    set; the runner adds it to the scrubbed base environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    prefix: tuple[str, ...] = ()
    cwd: str | None = None
    #: CPUs the runner must pin the child to itself (no numactl and no taskset).
    affinity: tuple[int, ...] | None = None
    notes: tuple[str, ...] = ()
    #: Two or more concurrent copies, each with its own binding (``prefix`` is then unused).
    instances: tuple[Instance, ...] = ()
    #: The single copy's binding as data (CPUs, numactl memory option), for launchers that
    #: bind without numactl (the fork server).
    cpus: tuple[int, ...] | None = None
    memory: str | None = None
    #: Changes to the machine (system knobs) in force while the run runs: the backend
    #: applies them under the exclusive host lock, journaled, and restores them after.
    system: tuple[SystemSetting, ...] = ()

    @property
    def command(self) -> list[str]:
        return [*self.prefix, *self.argv]

    def copies(self) -> list[Instance]:
        """What to start: one process, or one per instance."""
        return list(self.instances) or [Instance(prefix=self.prefix, affinity=self.affinity,
                                                 cpus=self.cpus, memory=self.memory)]

    def _line(self, copy: Instance) -> str:
        parts: list[str] = list(copy.prefix)
        if copy.affinity is not None and not copy.prefix:
            parts += ["taskset", "-c", format_cpu_list(copy.affinity)]
        if self.env:
            parts += ["env", *(f"{k}={v}" for k, v in sorted(self.env.items()))]
        parts += self.argv
        return shlex.join(parts)

    def shell_line(self) -> str:
        """``numactl ... env K=V ... program args`` (several joined with ``&`` and a final
        ``wait`` for concurrent instances): pasteable into a POSIX shell."""
        lines = [self._line(copy) for copy in self.copies()]
        line = lines[0] if len(lines) == 1 else " & ".join(lines) + " & wait"
        return f"cd {shlex.quote(self.cwd)} && {line}" if self.cwd else line

    def system_lines(self) -> list[str]:
        """The system settings as comment lines a user can read (and, as root, apply): one
        ``echo`` per file, one line per register change of an MSR knob."""
        lines: list[str] = []
        registers: dict[tuple[str, int | None, int, str], list[str]] = {}
        for setting in self.system:
            if setting.form == "msr":
                key = (setting.knob, setting.msr, setting.mask, setting.value)
                registers.setdefault(key, []).append(setting.path)
            else:
                lines.append(f"# {setting.knob}: {setting.describe()}")
        for (knob, register, mask, value), paths in registers.items():
            lines.append(f"# {knob}: MSR {register:#x} bits {mask:#x} = {int(value, 16):#x} "
                         f"on {len(paths)} CPUs (/dev/cpu/N/msr; e.g. wrmsr of msr-tools)")
        return lines

    def export_lines(self) -> list[str]:
        return [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]

    def to_dict(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "env": dict(self.env), "prefix": list(self.prefix),
                "cwd": self.cwd, "affinity": list(self.affinity) if self.affinity else None,
                "notes": list(self.notes),
                "cpus": list(self.cpus) if self.cpus else None, "memory": self.memory,
                "instances": [{"prefix": list(i.prefix),
                               "affinity": list(i.affinity) if i.affinity else None,
                               "cpus": list(i.cpus) if i.cpus else None, "memory": i.memory}
                              for i in self.instances],
                **({"system": [setting.to_dict() for setting in self.system]}
                   if self.system else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Launch:
        affinity = data.get("affinity")
        instances = tuple(Instance(prefix=tuple(i["prefix"]),
                                   affinity=tuple(i["affinity"]) if i.get("affinity") else None,
                                   cpus=tuple(i["cpus"]) if i.get("cpus") else None,
                                   memory=i.get("memory"))
                          for i in data.get("instances", ()))
        cpus = data.get("cpus")
        return cls(argv=tuple(data["argv"]), env=dict(data.get("env", {})),
                   prefix=tuple(data.get("prefix", ())), cwd=data.get("cwd"),
                   affinity=tuple(affinity) if affinity else None,
                   notes=tuple(data.get("notes", ())), instances=instances,
                   cpus=tuple(cpus) if cpus else None, memory=data.get("memory"),
                   system=tuple(SystemSetting.from_dict(s) for s in data.get("system", ())))


@dataclass(kw_only=True)
class LaunchBuilder:
    """Collects what knobs ask for. Later requests for the same thing replace earlier ones."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str | None] = field(default_factory=dict)
    cpus: list[int] | None = None
    cpu_nodes: list[int] | None = None
    memory: str | None = None  # numactl memory option, e.g. "--membind=0"
    instances: int = 1
    cwd: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Whether ``argv`` is a template with ``{knob}`` placeholders (a command's arguments;
    #: a built-in's argument list is taken as it is).
    templated: bool = False
    #: The placeholders' values as text; None leaves out every argument that holds it.
    placeholders: dict[str, str | None] = field(default_factory=dict)
    #: Libraries to preload, by slot (``PRELOAD_SLOTS``).
    preloads: dict[str, str] = field(default_factory=dict)
    #: Changes to the machine, by knob (a later request of a knob replaces its earlier).
    system: dict[str, list[SystemSetting]] = field(default_factory=dict)

    def change_system(self, knob: str, settings: Sequence[SystemSetting]) -> None:
        """Have ``settings`` in force while the run runs (see ``Launch.system``)."""
        self.system[knob] = list(settings)

    def system_settings(self) -> tuple[SystemSetting, ...]:
        return tuple(s for settings in self.system.values() for s in settings)

    def preload(self, slot: str, path: str) -> None:
        """Preload the library at ``path`` as the ``slot`` one (``openmp`` or
        ``allocator``; a later request for a slot replaces the earlier). ``build`` joins the
        slots into ``LD_PRELOAD`` in ``PRELOAD_SLOTS`` order whatever the order of the
        requests, in front of any ``LD_PRELOAD`` the workload's own environment sets."""
        if slot not in PRELOAD_SLOTS:
            raise ValueError(f"unknown preload slot {slot!r} (known: {PRELOAD_SLOTS})")
        if not path or any(c == ":" or c.isspace() for c in path):
            raise ValueError(f"LD_PRELOAD cannot hold {path!r}: it separates its entries "
                             "with colons and spaces and has no escape")
        self.preloads[slot] = path

    def environment(self) -> dict[str, str]:
        """``env`` with the preloaded libraries joined into ``LD_PRELOAD``."""
        env = dict(self.env)
        libraries = [self.preloads[slot] for slot in PRELOAD_SLOTS if slot in self.preloads]
        if libraries:
            given = env.get("LD_PRELOAD", "")
            env["LD_PRELOAD"] = ":".join([*libraries, *([given] if given else [])])
        return env

    def set_placeholder(self, name: str, value: str | None) -> None:
        """Fill ``{name}`` with ``value``; None leaves out the arguments that hold it."""
        self.placeholders[name] = value

    def arguments(self, notes: list[str]) -> list[str]:
        """``argv`` with its placeholders filled and ``{{``/``}}`` unescaped: an argument
        holding a placeholder that is None, or was never given a value (noted), is left
        out."""
        if not self.templated:
            return list(self.argv)
        out: list[str] = []
        for argument in self.argv:
            names = template_fields(argument)
            missing = [n for n in names if n not in self.placeholders]
            if missing:
                notes.append(f"argument {argument!r} left out: no value for "
                             f"{', '.join('{' + n + '}' for n in missing)}")
            if missing or any(self.placeholders[n] is None for n in names):
                continue
            values = {name: self.placeholders[name] or "" for name in names}
            out.append("".join(literal + (values[name] if name is not None else "")
                               for literal, name, _, _ in Formatter().parse(argument)))
        return out

    def set_env(self, name: str, value: str) -> None:
        self.env[name] = value

    def set_flag(self, flag: str, value: str | None) -> None:
        """``--flag value``, or ``--flag`` alone when value is None."""
        self.flags[flag] = value

    def bind_cpus(self, cpus: Sequence[int]) -> None:
        self.cpus = sorted(set(cpus))
        self.cpu_nodes = None

    def bind_cpu_nodes(self, nodes: Sequence[int], cpus_of_nodes: Sequence[int]) -> None:
        """Bind to NUMA nodes; ``cpus_of_nodes`` serves the taskset fallback."""
        self.cpu_nodes = sorted(set(nodes))
        self.cpus = sorted(set(cpus_of_nodes))

    def bind_memory(self, option: str) -> None:
        self.memory = option

    def build(self, host: Host) -> Launch:
        notes = list(self.notes)
        argv = self.arguments(notes)
        for flag, value in self.flags.items():
            argv += [flag] if value is None else [flag, value]
        if self.instances > 1:
            copies = tuple(self._bind(host, cpus, None, notes)
                           for cpus in split_cores(host, self.cpus, self.instances))
            return Launch(argv=tuple(argv), env=self.environment(), cwd=self.cwd,
                          notes=tuple(dict.fromkeys(notes)), instances=copies,
                          system=self.system_settings())
        copy = self._bind(host, self.cpus, self.cpu_nodes, notes)
        return Launch(argv=tuple(argv), env=self.environment(), prefix=copy.prefix,
                      cwd=self.cwd,
                      affinity=copy.affinity, notes=tuple(dict.fromkeys(notes)),
                      cpus=copy.cpus, memory=copy.memory, system=self.system_settings())

    def _bind(self, host: Host, cpus: list[int] | None, nodes: list[int] | None,
              notes: list[str]) -> Instance:
        """numactl where present; else taskset for CPUs; else an affinity the runner sets."""
        tools = host.tools
        bound = tuple(cpus) if cpus is not None else None
        if tools.numactl and (cpus is not None or self.memory):
            prefix = ["numactl"]
            if nodes is not None:
                prefix.append(f"--cpunodebind={','.join(map(str, nodes))}")
            elif cpus is not None:
                prefix.append(f"--physcpubind={format_cpu_list(cpus)}")
            if self.memory:
                prefix.append(self.memory)
            return Instance(prefix=tuple(prefix), cpus=bound, memory=self.memory)
        if self.memory:
            notes.append(f"memory binding {self.memory} skipped: numactl is missing")
        if cpus is None:
            return Instance()
        if tools.taskset:
            return Instance(prefix=("taskset", "-c", format_cpu_list(cpus)), cpus=bound)
        return Instance(affinity=bound, cpus=bound)


def split_cores(host: Host, cpus: list[int] | None, count: int) -> list[list[int]]:
    """``count`` disjoint CPU sets of equal numbers of whole physical cores, socket 0 first,
    taken from ``cpus`` (default: every usable CPU). Cores left over are not used."""
    pool = set(cpus) if cpus is not None else set(host.topology.allowed)
    cores = [[c.id for c in core if c.id in pool] for core in host.topology.cores]
    cores = [core for core in cores if core]
    per = len(cores) // count
    if per < 1:
        raise ValueError(f"{count} instances need {count} cores; the binding has {len(cores)}")
    return [sorted(c for core in cores[i * per:(i + 1) * per] for c in core)
            for i in range(count)]
