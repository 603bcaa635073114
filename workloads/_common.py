"""The contract every built-in workload follows (see the README, "Workload contract").

A workload is a program, ``python -m workloads.NAME``. It

1. parses its flags (``--preset`` picks a set of defaults, explicit flags override them);
2. applies the thread settings *before* TensorFlow runs its first op
   (``configure_tensorflow``), because TensorFlow fixes its thread pools at start-up;
3. prints one ``SETTINGS {json}`` line with the values it actually runs with (thread pools,
   CPU affinity, memory policy, the OpenMP/KMP variables it sees, versions, the threading
   and allocator ``libraries`` mapped in the process and the framework ``build``); a
   library mapped only by the first step (a lazy ``dlopen``) updates it: the line is
   printed again after that step, and the last one holds;
4. warms up (excluded from timing), then measures for a fixed wall-clock time split into
   intervals, printing ``METRIC throughput=... unit=... interval=i`` per interval and
   ``FINAL throughput=... unit=...`` at the end (``measure``);
5. prints the line its reference implementation printed, so tuner's parsers for foreign
   programs are tested on real output;
6. prints ``TIMING {json}``: where the process's seconds went (interpreter start, imports,
   model build, first step, warm-up, measurement), so tuner can report and cut what is
   not measurement.

Only the standard library is imported here at module level: TensorFlow is imported inside
``configure_tensorflow`` so that flags are parsed (and errors reported) without paying for
the import, and so no op can run before the thread pools are set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _seconds_since_process_start() -> float:
    """How long ago this process was started (exec of the interpreter, or of numactl)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        return max(0.0, since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


#: Moments of this process's life, in time.monotonic() seconds.
_MARKS: dict[str, float] = {"common_imported": time.monotonic()}
_MARKS["process_started"] = _MARKS["common_imported"] - _seconds_since_process_start()


def forked() -> None:
    """Called by tuner's fork server in a new child: its life starts now, and the imports
    were done before the fork."""
    now = time.monotonic()
    _MARKS.clear()
    _MARKS.update({"process_started": now, "common_imported": now})


def mark(name: str) -> None:
    _MARKS.setdefault(name, time.monotonic())


def timing() -> dict[str, float]:
    """Seconds per phase so far: interpreter (start-up to this module), imports (TensorFlow),
    build (model and inputs), first_step (tracing and the first run), warmup, measure."""
    order = ["process_started", "common_imported", "tf_imported", "built", "first_step",
             "warmed_up", "measured"]
    names = ["interpreter", "imports", "build", "first_step", "warmup", "measure"]
    out: dict[str, float] = {}
    for name, (start, end) in zip(names, zip(order, order[1:], strict=False), strict=True):
        if start in _MARKS and end in _MARKS:
            out[name] = round(_MARKS[end] - _MARKS[start], 4)
    return out


#: Environment variables whose values a workload reports, so tuner can check that the
#: knobs it set really reached the process.
REPORTED_ENV = (
    "OMP_NUM_THREADS",
    "KMP_AFFINITY",
    "KMP_BLOCKTIME",
    "KMP_HW_SUBSET",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)


#: File-name patterns of the threading, BLAS and allocator libraries, as tuner names them
#: (``tuner.execution.libraries``, which a workload cannot import: it runs in whatever
#: runtime the study names; ``workloads._torch`` holds the same). A wheel's bundled copy
#: carries a hash (torch's ``libgomp-a34b3233.so.1``).
_SUFFIX = r"(?:-[0-9a-f]{6,})?\.so(?:\.\d+)*"
LIBRARY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(stem + _SUFFIX + r"\Z")) for name, stem in (
        ("libgomp", r"libgomp"),
        ("libiomp5", r"libiomp5(?:_db)?"),
        ("libomp", r"libomp"),
        ("libtbb", r"libtbb(?:\d+)?"),
        ("jemalloc", r"libjemalloc"),
        ("tcmalloc", r"libtcmalloc(?:_minimal|_and_profiler|_debug|_minimal_debug)?"),
    )) + (("openblas", re.compile(r"lib(?:scipy_)?openblas[\w.-]*\.so(?:\.\d+)*\Z")),)


def library_kind(filename: str) -> str | None:
    """The library a shared object's file name says it is (``libgomp``, ``libiomp5``,
    ``libomp``, ``libtbb``, ``openblas``, ``jemalloc``, ``tcmalloc``), or None."""
    for name, pattern in LIBRARY_PATTERNS:
        if pattern.match(filename):
            return name
    return None


def mapped_library_files() -> dict[str, list[str]]:
    """The threading and allocator libraries mapped in this process (/proc/self/maps), by
    kind, with their paths."""
    found: dict[str, set[str]] = {}
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip().removesuffix(" (deleted)")
                    kind = library_kind(os.path.basename(path))
                    if kind is not None:
                        found.setdefault(kind, set()).add(path)
    except OSError:
        return {}
    return {kind: sorted(paths) for kind, paths in sorted(found.items())}


def mapped_libraries() -> list[str]:
    """``mapped_library_files``' kinds, sorted: the SETTINGS line's ``libraries``."""
    return sorted(mapped_library_files())


def tensorflow_build(tf: Any) -> dict[str, Any]:
    """TensorFlow's build, for the SETTINGS line's ``build``: its version and oneDNN's
    threading, ``openmp`` for Intel's OpenMP build (oneDNN enabled and an OpenMP runtime
    that TensorFlow brought, not one ``LD_PRELOAD`` put there), else ``threadpool`` (the
    stock build runs oneDNN on TensorFlow's own thread pool, where OpenMP variables are
    inert)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn = False
    preloaded = {os.path.realpath(p) for p in
                 os.environ.get("LD_PRELOAD", "").replace(":", " ").split() if p}
    openmp = [path for kind, paths in mapped_library_files().items()
              if kind in ("libgomp", "libiomp5", "libomp") for path in paths
              if os.path.realpath(path) not in preloaded]
    return {"framework": "tensorflow", "version": tf.__version__,
            "onednn": onednn, "onednn_threading": "openmp" if onednn and openmp
            else "threadpool"}


#: The last SETTINGS line printed (``measure`` prints it again if the first step mapped
#: another library).
_SETTINGS: dict[str, Any] = {}


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """The result of ``measure``: total items over total timed seconds, and the intervals."""

    throughput: float
    items: float
    seconds: float
    intervals: list[float] = field(default_factory=list)


def base_parser(
    *, prog: str, description: str, presets: Mapping[str, Mapping[str, Any]]
) -> argparse.ArgumentParser:
    """Flags shared by all built-in workloads. Workload-specific flags are added by the caller.

    Preset values become argparse defaults in ``parse_args``; an explicit flag always wins.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--preset", choices=sorted(presets), default="small",
                        help="a named set of sizes (default: small)")
    parser.add_argument("--inter-op", type=int, default=0, metavar="N",
                        help="TensorFlow inter-op pool size (0: let TensorFlow choose)")
    parser.add_argument("--intra-op", type=int, default=0, metavar="N",
                        help="TensorFlow intra-op pool size (0: let TensorFlow choose)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--xla", choices=("off", "on"), default="off",
                        help="compile the measured step with XLA (jit_compile)")
    parser.add_argument("--warmup-steps", type=int, default=None, metavar="N",
                        help="steps run before timing starts (excluded from the metric)")
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
) -> argparse.Namespace:
    """Parse twice: once to learn the preset, then with the preset's values as defaults
    (argparse lets a flag given on the command line beat any default)."""
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
    if args.intervals < 1 or args.seconds <= 0 or args.batch_size < 1 or args.warmup_steps < 0:
        parser.error("--intervals and --batch-size must be >= 1, --seconds > 0, "
                     "--warmup-steps >= 0")
    if args.inter_op < 0 or args.intra_op < 0:
        parser.error("--inter-op and --intra-op must be >= 0 (0 lets TensorFlow choose)")
    return args


def configure_tensorflow(args: argparse.Namespace) -> Any:
    """Import TensorFlow and apply thread pools, seeds and precision before any op runs.

    Returns the ``tensorflow`` module. Thread pool sizes of 0 leave TensorFlow's choice.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    mark("tf_imported")
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    tf.random.set_seed(args.seed)
    return tf


def compute_dtype(tf: Any, args: argparse.Namespace) -> Any:
    return tf.bfloat16 if args.precision == "bf16" else tf.float32


def effective_pool_sizes(tf: Any) -> tuple[int, int]:
    """The inter-op and intra-op pool sizes TensorFlow really uses (0 means its own default,
    which is the number of CPUs this process may run on)."""
    default = len(os.sched_getaffinity(0))
    inter = tf.config.threading.get_inter_op_parallelism_threads() or default
    intra = tf.config.threading.get_intra_op_parallelism_threads() or default
    return inter, intra


def memory_policy() -> str:
    """The NUMA memory policy of this process, as numactl set it ('default', 'bind:0', ...).

    Read from the heap mapping's entry in /proc/self/numa_maps (the policy numactl sets is
    inherited by every mapping made after exec)."""
    try:
        with open("/proc/self/numa_maps", encoding="ascii") as maps:
            for line in maps:
                if " heap " in line or line.rstrip().endswith("heap"):
                    return line.split()[1]
            maps.seek(0)
            first = maps.readline().split()
            return first[1] if len(first) > 1 else "unknown"
    except OSError:
        return "unknown"


def report_settings(tf: Any, args: argparse.Namespace, workload: str,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Print the ``SETTINGS`` line: the values this process actually runs with. ``tf`` is
    None for a workload that runs without TensorFlow (no pools exist: inter_op and intra_op
    are null)."""
    inter, intra = effective_pool_sizes(tf) if tf is not None else (None, None)
    settings: dict[str, Any] = {
        "workload": workload,
        "preset": args.preset,
        "inter_op": inter,
        "intra_op": intra,
        "inter_op_requested": args.inter_op,
        "intra_op_requested": args.intra_op,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "xla": args.xla,
        "affinity": sorted(os.sched_getaffinity(0)),
        "mempolicy": memory_policy(),
        "threads": len(os.listdir("/proc/self/task")),
        "env": {name: os.environ[name] for name in REPORTED_ENV if name in os.environ},
        "tensorflow": tf.__version__ if tf is not None else _installed_tensorflow(),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "python": platform.python_version(),
        "pid": os.getpid(),
        "libraries": mapped_libraries(),
    }
    # the same keys with and without TensorFlow: a run without it reports NumPy as its build
    settings["build"] = (tensorflow_build(tf) if tf is not None else
                         {"framework": "numpy", "version": _numpy_version()})
    settings.update(extra or {})
    print("SETTINGS " + json.dumps(settings, sort_keys=True), flush=True)
    _SETTINGS.clear()
    _SETTINGS.update(settings)
    return settings


def _settings_after_first_step() -> None:
    """Print the SETTINGS line again if the first step mapped a library that was not yet
    mapped when it was printed (the parser keeps the last)."""
    if _SETTINGS and "libraries" in _SETTINGS:
        now = mapped_libraries()
        if now != _SETTINGS["libraries"]:
            _SETTINGS["libraries"] = now
            print("SETTINGS " + json.dumps(_SETTINGS, sort_keys=True), flush=True)


def _numpy_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("numpy")
    except metadata.PackageNotFoundError:
        return None


def _installed_tensorflow() -> str | None:
    from importlib import metadata

    for name in ("tensorflow-cpu", "tensorflow"):
        try:
            return f"{metadata.version(name)} (not imported)"
        except metadata.PackageNotFoundError:
            continue
    return None


def measure(
    step: Callable[[], object],
    *,
    items_per_step: float,
    unit: str,
    warmup_steps: int,
    seconds: float,
    intervals: int,
    on_interval: Callable[[int, float], None] | None = None,
) -> Measurement:
    """Warm up, then time ``step`` for ``seconds`` split into ``intervals`` METRIC lines.

    ``step`` must block until its work is done (return a NumPy value or call ``.numpy()``).
    Every interval runs at least one step, so a very slow step lengthens the run rather than
    reporting nothing. Throughput is timed items / timed seconds, never an average of rates.
    """
    mark("built")
    for index in range(warmup_steps):
        step()
        if index == 0:
            mark("first_step")
            _settings_after_first_step()
    first_step_timed = warmup_steps == 0  # its libraries are checked, off the clock
    mark("first_step")
    mark("warmed_up")
    per_interval = seconds / intervals
    total_items = 0.0
    total_seconds = 0.0
    rates: list[float] = []
    for index in range(1, intervals + 1):
        items = 0.0
        start = time.perf_counter()
        elapsed = 0.0
        while items == 0.0 or elapsed < per_interval:
            step()
            items += items_per_step
            if first_step_timed:
                first_step_timed = False
                paused = time.perf_counter()
                _settings_after_first_step()
                start += time.perf_counter() - paused
            elapsed = time.perf_counter() - start
        rate = items / elapsed
        rates.append(rate)
        total_items += items
        total_seconds += elapsed
        print(f"METRIC throughput={rate:.4f} unit={unit} interval={index} "
              f"items={items:g} seconds={elapsed:.4f}", flush=True)
        if on_interval is not None:
            on_interval(index, rate)
    throughput = total_items / total_seconds
    mark("measured")
    print(f"FINAL throughput={throughput:.4f} unit={unit} items={total_items:g} "
          f"seconds={total_seconds:.4f}", flush=True)
    print("TIMING " + json.dumps(timing(), sort_keys=True), flush=True)
    return Measurement(throughput=throughput, items=total_items, seconds=total_seconds,
                       intervals=rates)
