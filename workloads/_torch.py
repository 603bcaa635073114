"""The workload contract (``workloads._common``) for PyTorch workloads.

What differs from the TensorFlow workloads: the knob flags are ``--threads`` (torch's
intra-op pool, ``torch.set_num_threads``: the OpenMP team) and ``--interop-threads``
(``torch.set_num_interop_threads``), both applied right after ``import torch`` and before any
op (the inter-op pool can only be sized before its first use). Absent, torch keeps its own
defaults. The SETTINGS line reports what torch then runs with, the OpenMP/allocator
variables the process sees, the threading and allocator libraries mapped in the process
(``libraries``, read after the first step because libraries load lazily), which of them
answers the OpenMP calls (``openmp_runtime``) and the build (``build``, from
``torch.__config__.parallel_info()``).

Only the standard library is imported at module level: flags are parsed, and bad ones
rejected, before torch is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workloads import _common

#: The variables a torch workload reports: the common ones and those of the OpenMP runtimes
#: (GNU's and Intel's) and of the dynamic loader that picks the runtime and the allocator.
TORCH_REPORTED_ENV = tuple(dict.fromkeys((
    *_common.REPORTED_ENV,
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "OMP_SCHEDULE",
    "GOMP_CPU_AFFINITY",
    "LD_PRELOAD",
)))

def classify_library(path: str) -> str | None:
    """The library name (``libgomp``, ``libiomp5``, ``libomp``, ``libtbb``, ``openblas``,
    ``jemalloc``, ``tcmalloc``) of a shared object's path, or None for any other file
    (``_common.LIBRARY_PATTERNS``: tuner's own names, which a workload cannot import)."""
    return _common.library_kind(path.removesuffix(" (deleted)").rsplit("/", 1)[-1])


def mapped_libraries(maps_text: str | None = None) -> list[str]:
    """The threading, BLAS and allocator libraries mapped in this process, sorted (from
    ``/proc/self/maps``, or from ``maps_text`` in that format)."""
    if maps_text is None:
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                maps_text = maps.read()
        except OSError:
            return []
    found = set()
    for line in maps_text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            name = classify_library(fields[5].strip())
            if name is not None:
                found.add(name)
    return sorted(found)


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def openmp_runtime() -> str | None:
    """Which mapped library answers the process's OpenMP calls: the one that defines
    ``omp_get_max_threads`` in the global symbol scope (a runtime in ``LD_PRELOAD`` comes
    before the libgomp torch links against, which then stays mapped but unused). None when
    no OpenMP runtime is in the global scope."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        symbol = ctypes.cast(ctypes.CDLL(None).omp_get_max_threads, ctypes.c_void_p)
        info = _DlInfo()
        libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        if not libc.dladdr(symbol, ctypes.byref(info)) or not info.dli_fname:
            return None
        return classify_library(info.dli_fname.decode(errors="replace"))
    except (OSError, AttributeError):
        return None


def parse_parallel_info(text: str) -> dict[str, str | None]:
    """The threading facts of ``torch.__config__.parallel_info()``: the ATen parallel backend,
    the OpenMP line and the oneDNN (MKL-DNN) line; None for a line that is absent."""
    out: dict[str, str | None] = {"parallel_backend": None, "openmp": None, "mkldnn": None}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ATen parallel backend:"):
            out["parallel_backend"] = line.split(":", 1)[1].strip() or None
        elif line.startswith("OpenMP") and out["openmp"] is None:
            out["openmp"] = line
        elif ("MKL-DNN" in line or "oneDNN" in line) and out["mkldnn"] is None:
            out["mkldnn"] = line
    return out


def build_info(torch: Any) -> dict[str, Any]:
    """The ``build`` key of SETTINGS for torch."""
    return {"framework": "torch", "version": torch.__version__,
            **parse_parallel_info(torch.__config__.parallel_info())}


def base_parser(
    *, prog: str, description: str, presets: Mapping[str, Mapping[str, Any]]
) -> argparse.ArgumentParser:
    """Flags shared by the torch workloads (the TensorFlow ones' minus the pool and XLA flags,
    plus torch's two pools). Workload-specific flags are added by the caller."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--preset", choices=sorted(presets), default="small",
                        help="a named set of sizes (default: small)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch.set_num_threads: the intra-op (OpenMP) pool "
                             "(absent: torch's default)")
    parser.add_argument("--interop-threads", type=int, default=None, metavar="N",
                        help="torch.set_num_interop_threads: the inter-op pool "
                             "(absent: torch's default)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: the model runs under torch.autocast('cpu', bfloat16)")
    parser.add_argument("--warmup-steps", type=int, default=None, metavar="N",
                        help="steps run before timing starts (at least one is always run)")
    parser.add_argument("--seconds", type=float, default=None, metavar="S",
                        help="wall-clock seconds of timed measurement")
    parser.add_argument("--intervals", type=int, default=None, metavar="N",
                        help="number of METRIC lines the timed seconds are split into")
    parser.add_argument("--seed", type=int, default=1234)
    return parser


def parse_args(
    parser: argparse.ArgumentParser,
    presets: Mapping[str, Mapping[str, Any]],
    argv: Sequence[str] | None = None,
    *,
    positive: Sequence[str] = (),
) -> argparse.Namespace:
    """Parse with the preset's values as defaults (an explicit flag wins), then check the
    values; ``positive`` names workload flags (dest names) that must be >= 1. Errors are
    argparse's: one line naming the flag, exit status 2."""
    known, _ = parser.parse_known_args(argv)
    preset = presets[known.preset]
    unknown_keys = [k for k in preset if not hasattr(known, k)]
    if unknown_keys:  # a programming error in the workload, not a user error
        raise SystemExit(f"preset {known.preset!r} sets unknown options {unknown_keys}")
    parser.set_defaults(**preset)
    args = parser.parse_args(argv)
    for name in ("warmup_steps", "seconds", "intervals", "batch_size"):
        if getattr(args, name) is None:
            parser.error(f"--{name.replace('_', '-')} has no value in preset {args.preset!r}")
    for name in ("threads", "interop_threads", "batch_size", "intervals", *positive):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    if args.warmup_steps < 0:
        parser.error(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
    return args


def configure_torch(args: argparse.Namespace) -> Any:
    """Import torch and size its pools before any op runs; seed it. Returns the module."""
    import torch

    _common.mark("tf_imported")  # the imports phase of ``_common.timing``
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.interop_threads is not None:
        torch.set_num_interop_threads(args.interop_threads)
    torch.manual_seed(args.seed)
    return torch


def autocast(torch: Any, args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """bf16: torch.autocast on the CPU; fp32: nothing."""
    if args.precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)  # type: ignore[no-any-return]
    return contextlib.nullcontext()


def report_settings(torch: Any, args: argparse.Namespace, workload: str,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Print the ``SETTINGS`` line of a torch workload: the values it actually runs with.
    Call it after the first step, so ``libraries`` holds what loaded lazily."""
    settings: dict[str, Any] = {
        "workload": workload,
        "preset": args.preset,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_threads_requested": args.threads,
        "torch_interop_threads_requested": args.interop_threads,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "affinity": sorted(os.sched_getaffinity(0)),
        "mempolicy": _common.memory_policy(),
        "threads": len(os.listdir("/proc/self/task")),
        "env": {name: os.environ[name] for name in TORCH_REPORTED_ENV if name in os.environ},
        "libraries": mapped_libraries(),
        "openmp_runtime": openmp_runtime(),
        "build": build_info(torch),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "pid": os.getpid(),
    }
    settings.update(extra or {})
    print("SETTINGS " + json.dumps(settings, sort_keys=True), flush=True)
    return settings


def run(torch: Any, step: Callable[[], object], args: argparse.Namespace, *, workload: str,
        unit: str, extra: Mapping[str, Any] | None = None) -> _common.Measurement:
    """Run the first step (untimed), print SETTINGS, then warm up and measure with
    ``_common.measure``: METRIC lines, FINAL and TIMING."""
    _common.mark("built")
    step()
    _common.mark("first_step")
    report_settings(torch, args, workload, extra)
    return _common.measure(step, items_per_step=args.batch_size, unit=unit,
                           warmup_steps=max(0, args.warmup_steps - 1), seconds=args.seconds,
                           intervals=args.intervals)
