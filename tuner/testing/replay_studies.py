"""Whole studies over a recorded surface, in-process: the study file a surface implies, a host
shaped like the one it was recorded on, and a ``StudyRun`` on in-memory storage answered by
``ReplayBackend``. The search and time-to-answer benchmarks and the tests share them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tuner.host import Fingerprint, Host, Tools, probe_host, synthetic_topology
from tuner.settings import get_settings
from tuner.space.search_space import SearchSpace, build_space
from tuner.spec.models import StudySpec
from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget
from tuner.testing.surfaces import ReplayBackend, Surface

REPLAY_FINGERPRINT = Fingerprint(cpu_model="replay", sockets=1, physical_cores=1,
                                 logical_cpus=1, numa_nodes=1, threads_per_core=1, kernel="",
                                 python="", tensorflow="", onednn="", numactl="")


def host_for(surface: Surface) -> Host:
    """This host where the surface was recorded on one like it, else a synthetic host of
    the recorded shape (sockets, cores, SMT, NUMA nodes)."""
    fp = surface.fingerprint
    local = probe_host()
    if not surface.synthetic and fp.get("physical_cores") == local.topology.physical_cores:
        return local
    sockets = int(fp.get("sockets", 1))
    return Host(topology=synthetic_topology(
        sockets=sockets, cores_per_socket=int(fp["physical_cores"]) // sockets,
        threads_per_core=int(fp.get("threads_per_core", 1)),
        nodes_per_socket=max(1, int(fp.get("numa_nodes", 1)) // sockets)),
        tools=Tools(numactl="numactl", taskset="taskset"))


def knob_entry(values: list[Any]) -> Any:
    """A surface axis as a study file's knob: a range where evenly spaced, else choices."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    steps = {b - a for a, b in zip(values, values[1:], strict=False)}
    if ints and len(steps) == 1:
        return {"low": values[0], "high": values[-1], "step": steps.pop()}
    return {"choices": values}


def replay_spec(surface: Surface, path: Path, *, name: str,
                **overrides: Any) -> StudySpec:
    """The study file of ``surface`` (replay workload, its axes as knobs), top-level keys
    replaced by ``overrides``."""
    return StudySpec.model_validate({
        "name": name,
        "workload": {"builtin": "replay", "params": {"surface": str(path)}},
        "knobs": {axis: knob_entry(values) for axis, values in surface.axes.items()},
        "objective": {"metric": surface.metric,
                      "direction": "maximize" if surface.maximize else "minimize"},
        "noise": {"runs": 3}, "confirm": {"top": 0}, "screening": "off",
        "threads_within_binding": False, **overrides})


@dataclass
class Replayed:
    """A finished replayed study and the backend that answered it (its seconds, runs)."""

    study: optuna.Study
    space: SearchSpace
    backend: ReplayBackend


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    """How to replay: the seed of the draws, a sampler replacing the study file's, trials
    at once (threads), whether to confirm, and start-up seconds saved per run."""

    seed: int = 0
    sampler: optuna.samplers.BaseSampler | None = None
    jobs: int = 1
    confirm: bool = False
    startup_saving: float = 0.0


def run_replay(surface: Surface, spec: StudySpec, host: Host,
               options: ReplayOptions | None = None) -> Replayed:
    """Run ``spec`` to the end on in-memory storage, every run answered from ``surface``."""
    options = options or ReplayOptions()
    space = build_space(spec, host)
    backend = ReplayBackend(surface, seed=options.seed, startup_saving=options.startup_saving)
    collaborators = Collaborators(settings=get_settings(), backend=backend,
                                  sampler=options.sampler)
    limits = RunLimits(confirm=options.confirm, jobs=options.jobs)
    result = StudyRun(StudyTarget(space=space, storage_url="memory",
                                  fingerprint=REPLAY_FINGERPRINT),
                      collaborators=collaborators, limits=limits).run()
    return Replayed(study=result.study, space=space, backend=backend)
