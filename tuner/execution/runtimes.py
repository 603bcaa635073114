"""Named Python runtimes: the interpreter a built-in workload runs in (``workload.python``).

A runtime is a virtual environment with its framework build, made by ``tuner runtime create
NAME`` under ``Settings.runtimes_dir``: ``<runtimes_dir>/NAME`` (the venv) and, next to it,
``<runtimes_dir>/NAME.json`` (its fingerprint, written last: a runtime is registered once
that file exists, so a failed or interrupted creation leaves nothing registered). The
fingerprint comes from a probe: the runtime's own interpreter runs ``PROBE`` (bounded in
time) and reports its Python, TensorFlow (and its oneDNN threading: ``openmp`` for Intel's
OpenMP build, ``threadpool`` for the stock one), PyTorch (and its parallel backend), NumPy,
and the OpenMP/threading libraries that lie in its prefix. An interpreter named by its path
is probed the same way, the answer cached under ``Settings.cache_dir`` per path and mtime.

``resolve`` turns ``workload.python`` into a ``Runtime`` (interpreter and prefix); a
foreign interpreter (not tuner's own) cannot import tuner's ``workloads`` package, so its
launches put ``workloads_path`` on ``PYTHONPATH``: a folder holding only a link to that
package, never tuner's other site-packages.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tuner.errors import TunerError
from tuner.host import Fingerprint, Host, RuntimeFacts, fingerprint
from tuner.settings import Settings, child_base_environment
from tuner.spec.models import RUNTIME_NAME

__all__ = ["PROBE", "Runtime", "RuntimeProblem", "check_name", "create", "facts", "fingerprint_of",
           "is_foreign", "names", "probe", "probe_path", "read_fingerprint", "remove",
           "resolve", "workloads_path"]

NAME_RULE = ("a runtime name (letters, digits, '.', '_', '-'; at most 64) made by "
             "`tuner runtime create NAME`, or the absolute path of an interpreter")
PROBE_TIMEOUT = 180.0

#: Run by the runtime's own interpreter (``python -I -c``): one JSON line on stdout.
PROBE = r'''
import json, os, platform, sys
from importlib import metadata

def version(*dists):
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return None

def kind(name):
    if name.startswith("libgomp") and ".so" in name: return "libgomp"
    if name.startswith("libiomp5"): return "libiomp5"
    if name.startswith("libomp.so"): return "libomp"
    if name.startswith("libtbb"): return "libtbb"
    if name.startswith("libjemalloc"): return "jemalloc"
    if name.startswith("libtcmalloc"): return "tcmalloc"
    return None

def mapped():
    out = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and kind(os.path.basename(parts[5])):
                out.add(kind(os.path.basename(parts[5])))
    return out

out = {"python": platform.python_version(), "executable": sys.executable,
       "prefix": sys.prefix, "numpy": version("numpy"),
       "tensorflow": version("tensorflow-cpu", "tensorflow", "intel-tensorflow",
                             "tensorflow-intel"),
       "torch": version("torch")}
files = {}
for root, dirs, names in os.walk(sys.prefix):
    dirs[:] = [d for d in dirs if d not in ("__pycache__", "include")]
    for name in names:
        lib = kind(name)
        if lib:
            files.setdefault(lib, []).append(os.path.join(root, name))
out["libraries"] = sorted(files)
out["library_files"] = {k: sorted(v)[:5] for k, v in sorted(files.items())}
if out["tensorflow"] and os.environ.get("TUNER_PROBE_FRAMEWORKS", "1") == "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from tensorflow.python.util import _pywrap_util_port
        openmp = mapped() & {"libgomp", "libiomp5", "libomp"}
        out["onednn_threading"] = ("openmp" if _pywrap_util_port.IsMklEnabled() and openmp
                                   else "threadpool")
    except Exception as exc:
        out["tensorflow_error"] = repr(exc)[:300]
if out["torch"] and os.environ.get("TUNER_PROBE_FRAMEWORKS", "1") == "1":
    try:
        import torch
        info = torch.__config__.parallel_info()
        for line in info.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "ATen parallel backend":
                out["torch_parallel_backend"] = value.strip()
    except Exception as exc:
        out["torch_error"] = repr(exc)[:300]
print(json.dumps(out, sort_keys=True))
'''


class RuntimeProblem(TunerError):
    """A runtime that cannot be used or made: an unknown name, an interpreter that is not
    one, a failed creation. The message says what was expected."""


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """What ``workload.python`` resolves to on this machine."""

    #: The registry name (``tuner runtime create NAME``); None for a path or tuner's own.
    name: str | None
    #: The interpreter (absolute path, as given: a venv's ``bin/python`` is a link whose
    #: target would lose the venv).
    python: str
    #: Its ``sys.prefix``, where the runtime's own libraries (libiomp5, ...) lie.
    prefix: str
    #: ``workload.python`` as written (None: tuner's own interpreter).
    given: str | None = None

    @property
    def label(self) -> str:
        return self.given or "default"

    @property
    def foreign(self) -> bool:
        return is_foreign(self.python)


def is_foreign(python: str) -> bool:
    """True for an interpreter other than tuner's own (compared as paths, not link targets:
    two venvs share a base interpreter)."""
    return os.path.abspath(python) != os.path.abspath(sys.executable)


def check_name(name: str) -> str | None:
    """Why ``name`` is not a valid runtime name (None: it is)."""
    if not RUNTIME_NAME.fullmatch(name) or name in (".", "..") or name.startswith("."):
        return f"{name!r} is not a runtime name: expected {NAME_RULE}"
    return None


def _fingerprint_file(runtimes_dir: Path, name: str) -> Path:
    return runtimes_dir / f"{name}.json"


def names(runtimes_dir: Path) -> list[str]:
    """The runtimes registered in ``runtimes_dir`` (complete ones: their fingerprint
    exists next to their folder)."""
    if not runtimes_dir.is_dir():
        return []
    return sorted(p.stem for p in runtimes_dir.glob("*.json")
                  if check_name(p.stem) is None and (runtimes_dir / p.stem).is_dir())


def read_fingerprint(runtimes_dir: Path, name: str) -> dict[str, Any]:
    """The stored fingerprint of runtime ``name``; ``RuntimeProblem`` naming the runtimes
    that exist if there is none."""
    problem = check_name(name)
    if problem:
        raise RuntimeProblem(problem)
    path = _fingerprint_file(runtimes_dir, name)
    if name not in names(runtimes_dir):
        have = ", ".join(names(runtimes_dir)) or "none"
        raise RuntimeProblem(f"no runtime named {name!r} in {runtimes_dir} (runtimes there: "
                             f"{have}; `tuner runtime create {name}` makes it)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeProblem(f"runtime {name!r}: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RuntimeProblem(f"runtime {name!r}: {path} does not hold a JSON object")
    return data


def resolve(value: str | None, *, runtimes_dir: Path) -> Runtime:
    """``workload.python`` on this machine: tuner's own interpreter (None), a registered
    runtime (a name), or an interpreter given by its absolute path (checked: an executable
    file). ``RuntimeProblem`` says what is wrong."""
    if value is None:
        return Runtime(name=None, python=sys.executable, prefix=sys.prefix)
    if value.startswith("/"):
        path = Path(value)
        if not path.is_file() or not os.access(path, os.X_OK):
            why = "does not exist" if not path.exists() else "is not an executable file"
            raise RuntimeProblem(f"{value} {why}; expected the absolute path of a Python "
                                 "interpreter (such as /opt/venv/bin/python)")
        return Runtime(name=None, python=value, prefix=_prefix_of(value, _mtime(path)),
                       given=value)
    if "/" in value:
        raise RuntimeProblem(f"{value!r}: expected {NAME_RULE}")
    data = read_fingerprint(runtimes_dir, value)
    python = runtimes_dir / value / "bin" / "python"
    if not python.exists():
        raise RuntimeProblem(f"runtime {value!r} has no interpreter at {python}; remove it "
                             f"(`tuner runtime remove {value}`) and create it again")
    return Runtime(name=value, python=str(python),
                   prefix=str(data.get("prefix") or runtimes_dir / value), given=value)


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


@lru_cache(maxsize=32)
def _prefix_of(python: str, mtime: int) -> str:
    """``sys.prefix`` of the interpreter ``python`` (asked, a few milliseconds)."""
    try:
        proc = subprocess.run([python, "-I", "-c", "import sys; print(sys.prefix)"],
                              capture_output=True, text=True, timeout=30, check=False,
                              env=child_base_environment(()))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeProblem(f"{python} did not run as a Python interpreter: {exc}") from exc
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeProblem(f"{python} did not run as a Python interpreter (exit status "
                             f"{proc.returncode}: {proc.stderr.strip()[-300:]})")
    return proc.stdout.strip().splitlines()[-1]


def probe(python: str, *, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """Run ``PROBE`` in ``python``: its versions, builds and OpenMP libraries."""
    env = {k: v for k, v in child_base_environment(()).items()
           if not k.startswith(("LD_PRELOAD", "OMP_", "KMP_", "GOMP_"))}
    try:
        proc = subprocess.run([python, "-I", "-c", PROBE], capture_output=True, text=True,
                              timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeProblem(f"probing {python} took longer than {timeout:g} s") from exc
    except OSError as exc:
        raise RuntimeProblem(f"cannot run {python}: {exc}") from exc
    lines = proc.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RuntimeProblem(f"probing {python} failed (exit status {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return data


def probe_path(python: str, *, cache_dir: Path) -> dict[str, Any]:
    """``probe`` of an interpreter given by path, cached per path and mtime."""
    key = hashlib.sha256(f"{python}\0{_mtime(Path(python))}".encode()).hexdigest()[:20]
    cache = cache_dir / "runtimes" / f"{key}.json"
    with contextlib.suppress(OSError, ValueError):
        cached = json.loads(cache.read_text())
        if isinstance(cached, dict):
            return cached
    data = probe(python)
    _write_json(cache, data)
    return data


def facts(runtime: Runtime, *, runtimes_dir: Path, cache_dir: Path) -> RuntimeFacts | None:
    """What ``runtime`` adds to a study's fingerprint (None for tuner's own interpreter:
    the fingerprint of a study without ``workload.python`` stays as it always was)."""
    if runtime.given is None:
        return None
    if runtime.name is not None:
        data = dict(read_fingerprint(runtimes_dir, runtime.name).get("probe") or {})
    else:
        data = probe_path(runtime.python, cache_dir=cache_dir)
    return RuntimeFacts(
        label=runtime.label, python=runtime.python,
        python_version=str(data.get("python") or "unknown"),
        tensorflow=str(data.get("tensorflow") or "not installed"),
        onednn_threading=str(data.get("onednn_threading") or ""),
        torch=str(data.get("torch") or "not installed"),
        torch_parallel=str(data.get("torch_parallel_backend") or ""),
        openmp=",".join(lib for lib in data.get("libraries") or []
                        if lib in ("libgomp", "libiomp5", "libomp")))


def _write_json(path: Path, data: object) -> None:
    """Written whole (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def create(name: str, *, runtimes_dir: Path, requirements: Path | None = None,
           packages: tuple[str, ...] = (), base_python: str = sys.executable
           ) -> dict[str, Any]:
    """Make runtime ``name``: ``python -m venv``, pip installs (pip's output streams to
    this process's), the probe, then the fingerprint, written last. Any failure removes
    what was made. Returns the fingerprint."""
    problem = check_name(name)
    if problem:
        raise RuntimeProblem(problem)
    if name in names(runtimes_dir):
        raise RuntimeProblem(f"runtime {name!r} exists in {runtimes_dir}; `tuner runtime "
                             f"remove {name}` first")
    if requirements is not None and not requirements.is_file():
        raise RuntimeProblem(f"--requirements {requirements}: no such file")
    folder = runtimes_dir / name
    runtimes_dir.mkdir(parents=True, exist_ok=True)
    if folder.exists():  # an unregistered leftover of a creation that was interrupted
        shutil.rmtree(folder)
    try:
        _run([base_python, "-m", "venv", str(folder)], "python -m venv")
        python = str(folder / "bin" / "python")
        wanted = [*(["-r", str(requirements)] if requirements else []), *packages]
        if wanted:
            _run([python, "-m", "pip", "install", "--disable-pip-version-check",
                  "--no-input", *wanted], "pip install")
        data = {"name": name, "python": python, "prefix": str(folder),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "base_python": base_python,
                "requirements": str(requirements) if requirements else None,
                "packages": list(packages), "probe": probe(python)}
        _write_json(_fingerprint_file(runtimes_dir, name), data)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return data


def _run(argv: list[str], what: str) -> None:
    try:
        code = subprocess.run(argv, check=False, env=child_base_environment(())).returncode
    except OSError as exc:
        raise RuntimeProblem(f"{what} could not start: {exc}") from exc
    if code != 0:
        raise RuntimeProblem(f"{what} failed (exit status {code}); nothing was registered")


def remove(name: str, *, runtimes_dir: Path) -> None:
    """Unregister runtime ``name`` (its fingerprint goes first), then delete its folder."""
    read_fingerprint(runtimes_dir, name)  # RuntimeProblem if there is no such runtime
    _fingerprint_file(runtimes_dir, name).unlink()
    shutil.rmtree(runtimes_dir / name, ignore_errors=True)


def workloads_package() -> Path:
    """The folder of tuner's ``workloads`` package: installed beside ``tuner`` (a plain or
    an editable install), else wherever ``import workloads`` finds a package (a script's
    own folder may hold a module of that name, e.g. ``bench/workloads.py``: not a package)."""
    beside = Path(__file__).resolve().parents[2] / "workloads"
    if (beside / "__init__.py").is_file():
        return beside
    spec = importlib.util.find_spec("workloads")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeProblem("tuner's workloads package is not importable here")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def workloads_path(cache_dir: Path) -> str:
    """A folder that holds only ``workloads`` (a link to tuner's package of built-ins), for
    the ``PYTHONPATH`` of a foreign interpreter."""
    package = workloads_package()
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    folder = cache_dir / "pythonpath" / digest
    link = folder / "workloads"
    if not (link.is_symlink() and Path(os.readlink(link)) == package):
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".workloads.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        partial.symlink_to(package, target_is_directory=True)
        os.replace(partial, link)
    return str(folder)


def fingerprint_of(host: Host, python: str | None, *, settings: Settings) -> Fingerprint:
    """The fingerprint of a study whose ``workload.python`` is ``python``, measured on
    ``host``: the host's, with the runtime's framework versions, builds and OpenMP library
    when one is named (tuner's own otherwise, as it always was)."""
    if python is None:
        return fingerprint(host, cache_dir=settings.cache_dir)
    runtime = resolve(python, runtimes_dir=settings.runtimes_dir)
    return fingerprint(host, cache_dir=settings.cache_dir, runtime=facts(
        runtime, runtimes_dir=settings.runtimes_dir, cache_dir=settings.cache_dir))
