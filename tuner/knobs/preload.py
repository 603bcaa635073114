"""Knobs that change which runtime libraries a process loads, through ``LD_PRELOAD``: the
OpenMP runtime (``omp_runtime``) and the memory allocator (``allocator``).

The anchor is PyTorch's launcher for Xeon, ``torch/backends/xeon/run_cpu.py``: by default
``_Launcher.set_multi_thread_and_allocator`` preloads Intel's OpenMP runtime (``libiomp5.so``;
``--disable-iomp`` keeps the GNU runtime torch links) and ``set_memory_allocator`` preloads
tcmalloc, else jemalloc (``--use-default-allocator`` keeps glibc's), each found by
``add_lib_preload`` as ``lib<name>.so`` in ``$CONDA_PREFIX/lib``, ``$VIRTUAL_ENV/lib``,
``~/.local/lib``, ``/usr/local/lib``, ``/usr/local/lib64``, ``/usr/lib`` or ``/usr/lib64``.
tuner looks in the runtime's own prefix (``Target.python_prefix``/lib, where the
intel-openmp wheel puts libiomp5.so and conda puts its allocators), then in the system's
library directories, the multiarch one included (``/usr/lib/x86_64-linux-gnu``, where
Debian's libjemalloc2 and libtcmalloc-minimal4 put ``libjemalloc.so.2`` and
``libtcmalloc_minimal.so.4``: run_cpu, which looks for the unversioned ``.so`` of the -dev
packages, misses them). ``find_library`` does the looking, over directories it is given, so
tests point it at a folder of fake libraries; nothing here reads tuner's environment.

A choice whose library is missing is left out of an ``auto`` domain (the knob's ``note``
says so) and refused when a study names it (``DomainError``, naming what to install). On a
host that stands for machines not known here (``Host.local`` false: ``tuner validate
--no-host``, the service's API) every library counts as present; the worker checks again.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuner.execution.launch import LaunchBuilder
from tuner.knobs.base import UNSET, ChoiceDomain, ChoiceKnob, Domain, KnobContext


@dataclass(frozen=True, kw_only=True)
class Library:
    """A library a knob can preload: its ``tuner.execution.libraries`` name, the file names
    it goes by (preferred first) and how to install it."""

    name: str
    label: str
    files: tuple[str, ...]
    install: str


INTEL_OPENMP = Library(name="libiomp5", label="Intel's OpenMP runtime", files=("libiomp5.so",),
                       install="pip install intel-openmp into the runtime")
JEMALLOC = Library(name="jemalloc", label="jemalloc",
                   files=("libjemalloc.so.2", "libjemalloc.so"),
                   install="apt install libjemalloc2")
TCMALLOC = Library(name="tcmalloc", label="tcmalloc",
                   files=("libtcmalloc_minimal.so.4", "libtcmalloc.so.4",
                          "libtcmalloc_minimal.so", "libtcmalloc.so"),
                   install="apt install libtcmalloc-minimal4")


def system_lib_dirs() -> tuple[str, ...]:
    """The system's library directories, in the order they are searched: run_cpu's, with
    the multiarch directory (this interpreter's ``MULTIARCH``, e.g. x86_64-linux-gnu)
    before ``/usr/lib``."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    arch = (f"/usr/lib/{multiarch}",) if multiarch else ()
    return ("/usr/local/lib", "/usr/local/lib64", *arch, "/usr/lib", "/usr/lib64")


def find_library(library: Library, dirs: Sequence[str]) -> str | None:
    """The first of ``library.files`` found in ``dirs`` (each directory in turn), or None.
    A path that ``LD_PRELOAD`` cannot hold (a colon or a blank in it) does not count."""
    for folder in dirs:
        for file in library.files:
            path = os.path.join(folder, file)
            if os.path.isfile(path) and not any(c == ":" or c.isspace() for c in path):
                return path
    return None


class PreloadKnob(ChoiceKnob):
    """A choice among libraries to preload (``choices``: choice -> library; the others
    preload nothing), in one ``LaunchBuilder`` preload ``slot``. ``system_dirs`` are
    searched after the runtime's own ``<prefix>/lib``."""

    changes_libraries = True
    slot: str
    choices: dict[str, Library]
    plain: tuple[str, ...]

    def __init__(self, *, system_dirs: Sequence[str] | None = None) -> None:
        self.system_dirs = tuple(system_lib_dirs() if system_dirs is None else system_dirs)
        self.allowed = (*self.plain, *self.choices)

    def dirs(self, ctx: KnobContext) -> tuple[str, ...]:
        return (os.path.join(ctx.target.python_prefix, "lib"), *self.system_dirs)

    def path(self, choice: str, ctx: KnobContext) -> str | None:
        """The file ``choice`` preloads here (None: it preloads nothing, or it is missing)."""
        library = self.choices.get(choice)
        return None if library is None else find_library(library, self.dirs(ctx))

    def missing(self, choice: str, ctx: KnobContext) -> str | None:
        """Why ``choice`` cannot run here (its library is not found), or None."""
        library = self.choices.get(choice)
        if library is None or not getattr(ctx.host, "local", True):
            return None
        if self.path(choice, ctx) is not None:
            return None
        looked = ", ".join(self.dirs(ctx))
        return (f"{choice}: {library.label} ({' or '.join(library.files)}) not found in "
                f"{looked}: {library.install}")

    def refuse(self, value: str, ctx: KnobContext) -> str | None:
        return self.missing(value, ctx)

    def auto_domain(self, ctx: KnobContext) -> Domain:
        return ChoiceDomain(tuple(c for c in (*self.plain, *self.choices)
                                  if c != UNSET and self.missing(c, ctx) is None))

    def note(self, ctx: KnobContext) -> str | None:
        gone = [reason for c in self.choices if (reason := self.missing(c, ctx)) is not None]
        return ("left out of auto: " + "; ".join(gone)) if gone else None

    def apply(self, value: Any, builder: LaunchBuilder, ctx: KnobContext) -> None:
        if value not in self.choices:
            return
        path = self.path(value, ctx)
        if path is None:
            builder.notes.append(f"{self.name}={value} not applied: "
                                 f"{self.missing(value, ctx)}")
            return
        builder.preload(self.slot, path)


class OmpRuntime(PreloadKnob):
    """``omp_runtime``: ``intel`` preloads Intel's OpenMP runtime (libiomp5.so, from the
    intel-openmp wheel in the runtime's prefix, or the system's), which then answers the
    program's OpenMP calls, GNU's ``GOMP_*`` entry points included (run_cpu's default);
    ``gnu`` preloads nothing: the program keeps the GNU runtime it links (PyTorch's wheels
    bundle their own libgomp). ``gnu`` cannot switch a program built against Intel's or
    LLVM's runtime (libgomp lacks the ``__kmpc_*`` entry points their compilers emit): there
    it means, like ``unset``, whatever the program links.

    On the ``torch`` and ``openmp`` runtimes only: TensorFlow's build decides its own
    threading (stock TensorFlow runs oneDNN on its own thread pool, Intel's build loads the
    libiomp5 it bundles), and a ``native`` program has no OpenMP runtime to replace."""

    name = "omp_runtime"
    family = "openmp"
    summary = ("the OpenMP runtime: gnu (the one the program links: PyTorch's bundled libgomp) "
               "or intel (libiomp5.so preloaded, from pip install intel-openmp)")
    slot = "openmp"
    plain = ("gnu", UNSET)
    choices = {"intel": INTEL_OPENMP}

    def availability(self, ctx: KnobContext) -> str | None:
        runtime = ctx.target.kind_of_runtime
        if runtime == "tensorflow":
            return ("TensorFlow's build decides its OpenMP runtime (stock TensorFlow runs "
                    "oneDNN on its own thread pool; Intel's build loads the libiomp5 it "
                    "bundles): to compare builds, run the study under each runtime "
                    "(workload.python)")
        if runtime == "native":
            return ("the command's runtime is native (no OpenMP runtime to replace); if it "
                    "is an OpenMP program, set workload.runtime: openmp")
        return None

    def default_value(self, ctx: KnobContext) -> Any:
        return "gnu"


class Allocator(PreloadKnob):
    """``allocator``: ``default`` keeps glibc's malloc; ``jemalloc`` and ``tcmalloc``
    preload Debian's libjemalloc2 / libtcmalloc-minimal4 (or a copy in the runtime's prefix).
    On every runtime: any program allocates."""

    name = "allocator"
    family = "runtime"
    summary = ("the memory allocator: default (glibc's malloc), jemalloc or tcmalloc "
               "(preloaded; apt install libjemalloc2 / libtcmalloc-minimal4)")
    slot = "allocator"
    plain = ("default",)
    choices = {"jemalloc": JEMALLOC, "tcmalloc": TCMALLOC}

    def default_value(self, ctx: KnobContext) -> Any:
        return "default"


def preload_knobs() -> list[ChoiceKnob]:
    """Fresh instances of this family, in catalogue order."""
    return [OmpRuntime(), Allocator()]
