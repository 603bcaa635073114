"""What a trial runs: an argument list, the environment knobs set, and the binding prefix.

Knobs write into a ``LaunchBuilder``; ``build`` turns the requested CPU and memory binding
into a ``numactl`` prefix, or, where numactl is missing, a ``taskset`` prefix (CPU binding
only) or an affinity the runner applies itself with ``sched_setaffinity``. A ``Launch`` is
plain data: it can be stored with the trial and rendered as a line a user can paste.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.host import Tools, format_cpu_list


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

    @property
    def command(self) -> list[str]:
        return [*self.prefix, *self.argv]

    def shell_line(self) -> str:
        """``numactl ... env K=V ... program args``: pasteable into a POSIX shell."""
        parts: list[str] = list(self.prefix)
        if self.affinity is not None and not self.prefix:
            parts += ["taskset", "-c", format_cpu_list(self.affinity)]
        if self.env:
            parts += ["env", *(f"{k}={v}" for k, v in sorted(self.env.items()))]
        parts += self.argv
        line = shlex.join(parts)
        return f"cd {shlex.quote(self.cwd)} && {line}" if self.cwd else line

    def export_lines(self) -> list[str]:
        return [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]

    def to_dict(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "env": dict(self.env), "prefix": list(self.prefix),
                "cwd": self.cwd, "affinity": list(self.affinity) if self.affinity else None,
                "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Launch:
        affinity = data.get("affinity")
        return cls(argv=tuple(data["argv"]), env=dict(data.get("env", {})),
                   prefix=tuple(data.get("prefix", ())), cwd=data.get("cwd"),
                   affinity=tuple(affinity) if affinity else None,
                   notes=tuple(data.get("notes", ())))


@dataclass(kw_only=True)
class LaunchBuilder:
    """Collects what knobs ask for. Later requests for the same thing replace earlier ones."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str | None] = field(default_factory=dict)
    cpus: list[int] | None = None
    cpu_nodes: list[int] | None = None
    memory: str | None = None  # numactl memory option, e.g. "--membind=0"
    cwd: str | None = None
    notes: list[str] = field(default_factory=list)

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

    def build(self, tools: Tools) -> Launch:
        argv = list(self.argv)
        for flag, value in self.flags.items():
            argv += [flag] if value is None else [flag, value]
        prefix: list[str] = []
        affinity: tuple[int, ...] | None = None
        notes = list(self.notes)
        if tools.numactl and (self.cpus is not None or self.memory):
            prefix = ["numactl"]
            if self.cpu_nodes is not None:
                prefix.append(f"--cpunodebind={','.join(map(str, self.cpu_nodes))}")
            elif self.cpus is not None:
                prefix.append(f"--physcpubind={format_cpu_list(self.cpus)}")
            if self.memory:
                prefix.append(self.memory)
        elif self.cpus is not None:
            if self.memory:
                notes.append(f"memory binding {self.memory} skipped: numactl is missing")
            if tools.taskset:
                prefix = ["taskset", "-c", format_cpu_list(self.cpus)]
            else:
                affinity = tuple(self.cpus)
        elif self.memory:
            notes.append(f"memory binding {self.memory} skipped: numactl is missing")
        return Launch(argv=tuple(argv), env=dict(self.env), prefix=tuple(prefix),
                      cwd=self.cwd, affinity=affinity, notes=tuple(notes))
