"""Inert by construction: a knob whose runtime library no baseline's process mapped is fixed
without a screening round; a knob whose runtime is there, or unknown, or a space whose
knobs change what is loaded, is measured as before. Real studies of real programs, with the
runs counted at the backend, and the decision itself on fabricated baselines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tuner.execution.backend import Backend, ProcessBackend, RunRequest
from tuner.execution.forkserver import backend_for
from tuner.execution.outcome import OnReading, Outcome
from tuner.host import Host, fingerprint
from tuner.results.render import render
from tuner.results.summary import summarize
from tuner.service.api.views import trial as trial_view
from tuner.settings import get_settings
from tuner.space import build_space, fit_to
from tuner.spec import load_file
from tuner.store.attributes import LOADED, ROLE, RUNS, SCREENING
from tuner.store.values import Loaded, Screened, Screening
from tuner.study.run import Collaborators, RunResult, StudyRun, StudyTarget
from tuner.study.screening import BaselineLoad, by_libraries
from tuner.testing.specs import study_yaml

PYTHON = sys.executable
INTEL_OPENMP = Path(sys.prefix) / "lib" / "libiomp5.so"
INTEL = ("libiomp5", "libomp")
TF_221 = {"framework": "tensorflow", "version": "2.21.0", "onednn": True,
          "onednn_threading": "threadpool"}


def load(role: str, trial: int, libraries: tuple[str, ...] | None,
         build: dict[str, Any] | None = None) -> BaselineLoad:
    return BaselineLoad(role=role, trial=trial, loaded=Loaded(libraries=libraries, build=build))


# -- the decision -----------------------------------------------------------------------

def test_no_runtime_in_any_baseline_is_inert_by_construction_with_the_evidence() -> None:
    loads = [load("defaults", 0, ("openblas",), TF_221), load("vendor", 1, ("openblas",))]
    entry, why = by_libraries("KMP_BLOCKTIME", INTEL, loads, [])
    assert entry is not None and why == ""
    assert entry["inert"] and entry["rounds"] == 0 and entry["basis"] == "libraries"
    assert entry["needs"] == ["libiomp5", "libomp"]
    assert entry["loaded"]["defaults"] == {"trial": 0, "libraries": ["openblas"],
                                           "build": TF_221}
    assert entry["evidence"] == (
        "no Intel OpenMP or LLVM OpenMP runtime (libiomp5/libomp) mapped in the baselines' "
        "processes (framework defaults, trial 0: openblas, allocator default; build: "
        "tensorflow 2.21.0 onednn_threading threadpool | vendor settings, trial 1: openblas, "
        "allocator default): inert by construction, fixed at unset, 0 rounds")
    stored = Screening.from_dict({"KMP_BLOCKTIME": entry})
    assert stored.inert == {"KMP_BLOCKTIME": entry["evidence"]}
    assert stored.knobs["KMP_BLOCKTIME"].basis == "libraries"


def test_a_baseline_with_unknown_libraries_does_not_count_but_one_must_be_known() -> None:
    entry, _ = by_libraries("KMP_BLOCKTIME", INTEL, [load("defaults", 0, ()),
                                                     load("vendor", 1, None)], [])
    assert entry is not None and "vendor settings, trial 1: libraries unknown" in \
        entry["evidence"]
    entry, why = by_libraries("KMP_BLOCKTIME", INTEL, [load("defaults", 0, None)], [])
    assert entry is None and why == "no baseline's loaded libraries are known: measured"
    entry, why = by_libraries("KMP_BLOCKTIME", INTEL, [], [])
    assert entry is None and "measured" in why


@pytest.mark.parametrize(("needs", "loads", "changers", "why"), [
    (INTEL, [load("defaults", 0, ()), load("vendor", 1, ("libiomp5", "jemalloc"))], [],
     "libiomp5 mapped in the vendor settings' process: measured"),
    (("libgomp", "libiomp5", "libomp"), [load("defaults", 0, ("libgomp",))], [],
     "libgomp mapped in the framework defaults' process: measured"),
    (INTEL, [load("defaults", 0, ("libiomp5",))], ["omp_runtime"],
     "omp_runtime in the space may load libraries the baselines did not: measured"),
    (INTEL, [load("defaults", 0, None), load("vendor", 1, ("libiomp5",))], ["omp_runtime"],
     "omp_runtime in the space may load libraries the baselines did not: measured"),
    (INTEL, None, [], "a baseline has not finished, so what it loads is unknown: measured"),
    ((), [load("defaults", 0, ())], [], ""),
])
def test_otherwise_the_knob_is_measured(needs: tuple[str, ...], loads: list[BaselineLoad] | None,
                                        changers: list[str], why: str) -> None:
    assert by_libraries("KMP_BLOCKTIME", needs, loads, changers) == (None, why)


def test_a_knob_whose_runtime_only_another_knob_loads_is_kept_unscreened() -> None:
    """KMP_BLOCKTIME next to omp_runtime, the defaults on GNU's libgomp: probed alone against
    the defaults it can only do nothing; under Intel's runtime it may matter (0.71x for
    KMP_BLOCKTIME=0 in bench/openmp_knobs.py), so the search keeps it."""
    loads = [load("defaults", 0, ("libgomp", "openblas")),
             load("vendor", 1, ("libgomp", "libiomp5", "tcmalloc"))]
    entry, why = by_libraries("KMP_BLOCKTIME", INTEL, loads, ["omp_runtime", "allocator"])
    assert entry is not None and why == ""
    assert not entry["inert"] and entry["rounds"] == 0 and entry["basis"] == "libraries"
    assert entry["evidence"] == (
        "no Intel OpenMP or LLVM OpenMP runtime (libiomp5/libomp) mapped in the framework "
        "defaults' process (framework defaults, trial 0: libgomp, openblas, allocator "
        "default); only omp_runtime, allocator can load one, which a probe against the "
        "defaults does not: kept for the search, unscreened, 0 rounds")
    stored = Screening.from_dict({"KMP_BLOCKTIME": entry})
    assert stored.inert == {} and stored.knobs["KMP_BLOCKTIME"].rounds == 0


def test_omp_num_threads_is_measured_where_only_openblas_reads_it() -> None:
    """NumPy's OpenBLAS sizes its pool from OMP_NUM_THREADS (pthreads build or not): a
    TensorFlow 2.21 process maps no OpenMP runtime, yet the knob is not inert by
    construction there (the NumPy proxy's throughput follows it)."""
    from tuner.knobs import catalogue

    needs = catalogue()["OMP_NUM_THREADS"].needs_library
    loads = [load("defaults", 0, ("openblas",), TF_221)]
    assert by_libraries("OMP_NUM_THREADS", needs, loads, []) == (
        None, "openblas mapped in the framework defaults' process: measured")
    entry, _ = by_libraries("OMP_NUM_THREADS", needs, [load("defaults", 0, ("jemalloc",))], [])
    assert entry is not None and entry["inert"] and entry["rounds"] == 0


def test_a_knob_screened_inert_has_no_importance() -> None:
    """The search never varies an inert knob: the only trials that set it are baselines, so
    an importance would say which baseline set it, not what it does."""
    import optuna

    from tuner.results.summary import importance

    study = optuna.create_study(direction="maximize")
    for index in range(12):  # "blocktime" moves with the value, "threads" a little
        study.add_trial(optuna.trial.create_trial(
            params={"threads": index % 3 + 1, "blocktime": index % 2},
            distributions={"threads": optuna.distributions.IntDistribution(1, 3),
                           "blocktime": optuna.distributions.IntDistribution(0, 1)},
            value=100.0 * (index % 2) + index % 3))
    assert "blocktime" in importance(study)
    entry, _ = by_libraries("blocktime", INTEL, [load("defaults", 0, ())], [])
    assert entry is not None
    SCREENING.put(study, Screening.from_dict({"blocktime": entry}))
    shown = importance(study)
    assert set(shown) == {"threads"} and shown["threads"] == pytest.approx(1.0)


def test_stored_screenings_without_the_new_fields_still_load() -> None:
    old = {"KMP_BLOCKTIME": {"probes": [0, 1], "speedups": {}, "margin": 0.05, "rounds": 4,
                             "inert": True, "evidence": "inside +/-5.0%: inert"}}
    screening = Screening.from_dict(old)
    entry = screening.knobs["KMP_BLOCKTIME"]
    assert entry.basis == "measured" and entry.needs == () and entry.loaded == {}
    assert screening.to_dict() == old  # shown exactly as stored
    built = Screened(inert=True, evidence="e", rounds=0, basis="libraries",
                     needs=("libiomp5",), loaded={"defaults": {"trial": 0}})
    again = Screened.from_dict(built.to_dict())
    assert (again.basis, again.needs, again.loaded) == ("libraries", ("libiomp5",),
                                                         {"defaults": {"trial": 0}})
    assert Loaded.from_dict({"libraries": None, "build": None}) == Loaded()
    with pytest.raises(TypeError):
        Loaded.from_dict({"libraries": "libgomp"})


# -- real studies of real programs --------------------------------------------------------

PROGRAM = """\
import ctypes, random, sys, time
for name in sys.argv[1:]:
    ctypes.CDLL(name)
rng = random.Random()
base = 1000.0 * (1 + rng.gauss(0, 0.002))
for i in (1, 2):
    time.sleep(0.02)
    print(f"METRIC throughput={base * (1 + rng.gauss(0, 0.001)):.3f} unit=items/s "
          f"interval={i}", flush=True)
print(f"FINAL throughput={base:.3f} unit=items/s", flush=True)
"""


class Counting(Backend):
    """A backend that counts the runs it was asked for."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls = 0

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        self.calls += 1
        return self.inner.run(request, on_reading)

    def close(self) -> None:
        self.inner.close()


def run_counted(path: Path, host: Host, storage: str,
                backend: Backend | None = None) -> tuple[RunResult, Counting]:
    loaded = load_file(path, fit=fit_to(host))
    settings = get_settings()
    counting = Counting(backend or ProcessBackend())
    target = StudyTarget(space=build_space(loaded.studies[0], host), storage_url=storage,
                         fingerprint=fingerprint(host, cache_dir=settings.cache_dir),
                         spec_text=loaded.text)
    result = StudyRun(target, collaborators=Collaborators(settings=settings,
                                                          backend=counting)).run()
    return result, counting


def command_study(tmp_path: Path, *libraries: str) -> Path:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    path = tmp_path / "study.yaml"
    path.write_text(study_yaml(
        name="libraries", workload={"command": [PYTHON, str(program), *libraries],
                                    "parser": "protocol", "timeout": 30},
        knobs={"KMP_BLOCKTIME": [0, 1, 200]}, budget={"n_trials": 3}, noise={"runs": 2},
        repeats=1, confirm={"top": 0}, pruner={"name": "none"}))
    return path


def trial_runs(result: RunResult) -> int:
    return sum(len(RUNS.get(t)) for t in result.study.get_trials())


def test_a_program_without_intel_openmp_spends_no_screening_round(
        tmp_path: Path, local_host: Host) -> None:
    result, counting = run_counted(command_study(tmp_path), local_host,
                                   f"sqlite:///{tmp_path / 'db.sqlite'}")
    study = result.study
    screening = SCREENING.get(study)
    assert screening is not None
    entry = screening.knobs["KMP_BLOCKTIME"]
    assert entry.inert and entry.basis == "libraries" and entry.rounds == 0
    assert "no Intel OpenMP or LLVM OpenMP runtime (libiomp5/libomp) mapped" in entry.evidence
    assert counting.calls == trial_runs(result)  # every run was a trial's: none screened
    trials = study.get_trials()
    baselines = [t for t in trials if ROLE.get(t) in ("defaults", "vendor")]
    assert baselines and all(LOADED.get(t) is not None for t in baselines)
    assert all("libiomp5" not in (LOADED.get(t).libraries or ("?",)) for t in baselines)
    search = [t for t in trials if ROLE.get(t) == "search"]
    assert search and all(t.params.get("KMP_BLOCKTIME") is None for t in search)
    report = render(summarize(study))
    assert ("Loaded by the framework defaults (trial 0): no OpenMP/TBB/BLAS library, "
            "allocator default") in report
    assert "Screening KMP_BLOCKTIME: no Intel OpenMP" in report
    assert trial_view(trials[0], {}).libraries == []


@pytest.mark.skipif(not INTEL_OPENMP.exists(), reason="intel-openmp is not installed")
def test_a_program_that_maps_intel_openmp_is_measured_as_before(
        tmp_path: Path, local_host: Host) -> None:
    result, counting = run_counted(command_study(tmp_path, str(INTEL_OPENMP)), local_host,
                                   f"sqlite:///{tmp_path / 'db.sqlite'}")
    screening = SCREENING.get(result.study)
    assert screening is not None
    entry = screening.knobs["KMP_BLOCKTIME"]
    assert entry.basis == "measured" and entry.rounds is not None and entry.rounds >= 4
    assert "KMP_BLOCKTIME=0 vs unset" in entry.evidence
    probes = len(entry.probes)
    assert counting.calls >= trial_runs(result) + entry.rounds * (1 + probes)
    defaults = result.study.get_trials()[0]
    assert "libiomp5" in (LOADED.get(defaults).libraries or ())
    trial = trial_view(defaults, {})
    assert trial.libraries is not None and "libiomp5" in trial.libraries


@pytest.mark.slow
def test_stock_tensorflow_maps_no_intel_openmp_so_kmp_knobs_cost_no_round(
        tmp_path: Path, local_host: Host) -> None:
    """On a real framework (40 s here, so slow): TensorFlow 2.21 runs oneDNN on its own
    thread pool and maps no OpenMP runtime, so KMP_* are inert by construction there (under
    Intel's OpenMP build the same study measures them)."""
    path = tmp_path / "resnet.yaml"
    path.write_text(study_yaml(
        name="tf-libraries", knobs={"KMP_BLOCKTIME": [0, 1, 200],
                                    "KMP_AFFINITY": ["unset", "granularity=fine,compact,1,0"]},
        budget={"n_trials": 2}, baselines=["defaults"], noise={"runs": 2}, repeats=1,
        confirm={"top": 0}, pruner={"name": "none"}))
    result, counting = run_counted(path, local_host, f"sqlite:///{tmp_path / 'db.sqlite'}",
                                   backend=backend_for("fork"))
    screening = SCREENING.get(result.study)
    assert screening is not None
    assert set(screening.knobs) == {"KMP_BLOCKTIME", "KMP_AFFINITY"}
    for name, entry in screening.knobs.items():
        assert entry.inert and entry.basis == "libraries" and entry.rounds == 0, name
    assert counting.calls == trial_runs(result) == 3
    defaults = LOADED.get(result.study.get_trials()[0])
    assert defaults is not None and defaults.libraries is not None
    assert not {"libgomp", "libiomp5", "libomp"} & set(defaults.libraries)
