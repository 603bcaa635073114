"""Which threading and allocator runtimes a process has loaded, read from what it maps.

A knob is read by a runtime library (``KMP_BLOCKTIME`` by Intel's or LLVM's OpenMP,
``OMP_NUM_THREADS`` by any OpenMP runtime, ``MALLOC_CONF`` by jemalloc): whether that
library is mapped in the workload's process is a fact, not a guess. ``classify`` names the
shared object of one path (its file name, wherever it lives: a system library, a wheel's
bundled copy such as torch's ``libgomp-a34b3233.so.1``, TensorFlow's ``libiomp5.so``):

* ``libgomp`` (GNU OpenMP), ``libiomp5`` (Intel OpenMP), ``libomp`` (LLVM OpenMP): role
  ``openmp``;
* ``libtbb`` (oneTBB): role ``threading``;
* ``openblas`` (OpenBLAS, e.g. NumPy's bundled ``libscipy_openblas64_-<hash>.so``): role
  ``blas``; a build without OpenMP runs its own threads and reads ``OPENBLAS_NUM_THREADS``,
  else ``OMP_NUM_THREADS``, so OMP_NUM_THREADS is not inert where it is mapped;
* ``jemalloc``, ``tcmalloc``: role ``allocator`` (``default``: neither, glibc's malloc).

``read_mapped(pid)`` reads ``/proc/PID/maps`` (at most ``MAX_MAPS_BYTES``: a process maps
thousands of files, and a pathological one must not fill the memory) and answers the names,
or None when it cannot tell: the process is gone (or a zombie, whose maps are empty), the
file is not readable, or it was longer than the bound (a cut list cannot say what is
absent). ``read_group(pid)`` adds the other members of the process group ``pid`` leads (a
workload started through ``sh -c`` or a launcher script runs its real program as a child;
tuner starts every workload as the leader of its own session). ``LibrarySampler`` is what
the runner uses while a run streams: it reads the group again now and then and keeps the
last reading that succeeded (libraries load lazily: an OpenMP runtime at the first parallel
region, so a later read replaces an earlier one).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "LABELS",
    "MAX_MAPS_BYTES",
    "NAMES",
    "ROLES",
    "LibrarySampler",
    "by_role",
    "classify",
    "classify_maps",
    "describe",
    "describe_build",
    "read_group",
    "read_mapped",
    "summary_line",
]

#: Every name, in the order they are listed.
NAMES = ("libgomp", "libiomp5", "libomp", "libtbb", "openblas", "jemalloc", "tcmalloc")
#: The names by role; a process with no allocator library runs glibc's (``default``).
ROLES: dict[str, tuple[str, ...]] = {"openmp": ("libgomp", "libiomp5", "libomp"),
                                     "threading": ("libtbb",), "blas": ("openblas",),
                                     "allocator": ("jemalloc", "tcmalloc")}
LABELS = {"libgomp": "GNU OpenMP", "libiomp5": "Intel OpenMP", "libomp": "LLVM OpenMP",
          "libtbb": "oneTBB", "openblas": "OpenBLAS", "jemalloc": "jemalloc",
          "tcmalloc": "tcmalloc"}

#: The most of one process's maps read (a few thousand mappings take well under 1 MiB).
MAX_MAPS_BYTES = 8 * 1024 * 1024
#: The most members of a process group whose maps are read.
MAX_GROUP = 32

_SUFFIX = r"(?:-[0-9a-f]{6,})?\.so(?:\.\d+)*"  # a wheel's hash, then .so and its version
_PATTERNS = tuple((name, re.compile(stem + _SUFFIX + r"\Z")) for name, stem in (
    ("libgomp", r"libgomp"),
    ("libiomp5", r"libiomp5(?:_db)?"),
    ("libomp", r"libomp"),
    ("libtbb", r"libtbb(?:\d+)?"),
    ("jemalloc", r"libjemalloc"),
    ("tcmalloc", r"libtcmalloc(?:_minimal|_and_profiler|_debug|_minimal_debug)?"),
)) + (("openblas", re.compile(r"lib(?:scipy_)?openblas[\w.-]*\.so(?:\.\d+)*\Z")),)


def classify(path: str) -> str | None:
    """The name of the runtime library at ``path`` (by its file name), or None."""
    base = path.removesuffix(" (deleted)").rsplit("/", 1)[-1]
    for name, pattern in _PATTERNS:
        if pattern.match(base):
            return name
    return None


def _ordered(names: Iterable[str]) -> tuple[str, ...]:
    found = set(names)
    return tuple(name for name in NAMES if name in found)


def classify_maps(text: str) -> tuple[str, ...]:
    """The runtime libraries named in the text of a ``/proc/PID/maps`` file, in ``NAMES``
    order, each once."""
    found = set()
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            name = classify(fields[5])
            if name is not None:
                found.add(name)
    return _ordered(found)


def _read_maps(pid: int, limit: int) -> str | None:
    """The text of ``/proc/PID/maps``; None when gone, unreadable, empty or over ``limit``."""
    try:
        with open(f"/proc/{pid}/maps", "rb") as maps:
            data = maps.read(limit + 1)
    except OSError:  # no such process, not ours to read, or it exited while read
        return None
    if not data or len(data) > limit:
        return None
    return data.decode("utf-8", errors="replace")


def read_mapped(pid: int, *, limit: int = MAX_MAPS_BYTES) -> tuple[str, ...] | None:
    """The runtime libraries process ``pid`` maps, or None when that cannot be told (see
    the module). Never raises."""
    text = _read_maps(pid, limit)
    return None if text is None else classify_maps(text)


def _group_members(leader: int) -> list[int]:
    """The other processes of the process group ``leader`` leads (its descendants that kept
    the group), from ``/proc/*/stat``."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    members = []
    for entry in entries:
        if not entry.isdigit() or int(entry) == leader:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read(4096).rsplit(b")", 1)[1].split()
            if int(fields[2]) == leader:  # state, ppid, pgrp
                members.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
        if len(members) >= MAX_GROUP:
            break
    return members


def read_group(pid: int, *, limit: int = MAX_MAPS_BYTES) -> tuple[str, ...] | None:
    """What ``pid`` and the other members of the process group it leads map, together;
    None when ``pid``'s own maps cannot be read. A member that exits meanwhile is left out."""
    own = read_mapped(pid, limit=limit)
    if own is None:
        return None
    found = set(own)
    for member in _group_members(pid):
        found.update(read_mapped(member, limit=limit) or ())
    return _ordered(found)


def by_role(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The names by role (``ROLES``); the allocator is ``("default",)`` when none is
    mapped, the other roles empty."""
    found = set(names)
    out = {role: tuple(n for n in members if n in found) for role, members in ROLES.items()}
    if not out["allocator"]:
        out["allocator"] = ("default",)
    return out


def describe(names: Iterable[str] | None) -> str:
    """One line for people: ``openmp libgomp; threading none; allocator jemalloc``, or
    ``unknown`` when the libraries could not be read."""
    if names is None:
        return "unknown"
    return "; ".join(f"{role} {', '.join(found) or 'none'}"
                     for role, found in by_role(names).items())


def describe_build(build: Mapping[str, Any] | None) -> str:
    """The framework build a workload reported, in one line: ``tensorflow 2.21.0
    onednn_threading threadpool``, ``torch 2.13.0 parallel_backend OpenMP`` ("" if none)."""
    if not build:
        return ""
    head = " ".join(str(build[k]) for k in ("framework", "version") if build.get(k))
    rest = " ".join(f"{k} {v}" for k, v in build.items()
                    if k not in ("framework", "version") and isinstance(v, str | int | float)
                    and not isinstance(v, bool) and len(str(v)) <= 60)
    return " ".join(part for part in (head, rest) if part)


def summary_line(names: Iterable[str] | None, build: Mapping[str, Any] | None) -> str:
    """``libgomp, jemalloc; build: torch 2.13.0 parallel_backend OpenMP``: the names, with
    ``no OpenMP/TBB/BLAS library`` when only an allocator (or nothing) is mapped and
    ``allocator default`` when no allocator library is (``libraries unknown`` when they
    could not be read), then the build if one was reported."""
    if names is None:
        text = "libraries unknown"
    else:
        shown = list(_ordered(names))
        allocators = set(ROLES["allocator"])
        if not set(shown) - allocators:
            shown.insert(0, "no OpenMP/TBB/BLAS library")
        if not allocators & set(shown):
            shown.append("allocator default")
        text = ", ".join(shown)
    said = describe_build(build)
    return text + (f"; build: {said}" if said else "")


class LibrarySampler:
    """Reads what one running child's process group maps, now and then, and keeps the last
    reading that succeeded (``libraries``; None until one has).

    ``poke()`` reads when ``every`` seconds have passed since the last read; ``poke(force=
    True)`` reads unless the last read was under ``min_gap`` seconds ago (a reading line
    asks it: the child is alive and has done the work the reading measured)."""

    def __init__(self, pid: int, *, every: float = 2.0, min_gap: float = 0.25) -> None:
        self.pid = pid
        self.every = every
        self.min_gap = min_gap
        self.libraries: tuple[str, ...] | None = None
        self.reads = 0
        self._last: float | None = None
        self.started = time.monotonic()

    def due(self) -> float:
        """The ``time.monotonic()`` of the next periodic read."""
        return (self._last if self._last is not None else self.started) + self.every

    def poke(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._last is None:
            if not force and now < self.started + self.every:
                return
        elif now - self._last < (self.min_gap if force else self.every):
            return
        self._last = now
        self.reads += 1
        found = read_group(self.pid)
        if found is not None:
            self.libraries = found
