"""Recorded performance surfaces: every configuration of a knob grid measured several times,
so that search strategies can be compared quickly and repeatably by replaying them.

A surface file (JSON, in ``bench/surfaces/``) holds the knob axes, for every configuration
its samples (the run's value, its per-interval values, its start-up and total seconds), the
two baselines' samples under the exact settings they applied, the host fingerprint, and
whether it was measured (``synthetic: false``) or generated from a performance model.

``ReplayBackend`` answers a trial in-process by drawing one of the configuration's recorded
samples, feeding its intervals to the pruner as a real run would, and charging the seconds
the real run took (start-up plus the intervals it got to). The program
``workloads/replay.py`` does the same as a real process, for tests through the whole loop.

A **modelled** surface (a synthetic one, ``bench/synthetic_surfaces.py``) also holds each
configuration's noise-free mean (``mean``) and the run noise of its model (``noise``,
``RunNoise``). There the mean *is* the configuration's true value, and the replay draws a
fresh run from the model at every call: a handful of stored samples would make the mean of
those samples the truth, off the model by their sampling error (about 2% for five runs at
5% noise, as large as the 2% a correct answer is judged by), and would make the "optimum"
whichever configuration drew the luckiest five. The stored samples stay, as examples of the
runs the model makes.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.execution.backend import Backend, RunRequest
from tuner.execution.outcome import Decision, OnReading, Outcome, Status
from tuner.execution.parsers import Reading
from tuner.goal import Goal
from tuner.knobs import UNSET
from tuner.space.search_space import config_key


@dataclass(frozen=True, kw_only=True)
class Sample:
    value: float
    intervals: list[float]
    startup: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "intervals": self.intervals, "startup": self.startup,
                "seconds": self.seconds}


@dataclass(frozen=True, kw_only=True)
class RunNoise:
    """How a modelled run scatters about its configuration's mean: the run off by a
    log-normal factor (``run_cv``), each of its ``intervals`` by a further one
    (``interval_cv``); ``startup`` seconds before the first interval, ``teardown`` after
    the last."""

    run_cv: float
    interval_cv: float
    intervals: int
    startup: float
    teardown: float

    def sample(self, mean: float, rng: random.Random, *, interval_seconds: float) -> Sample:
        run = mean * math.exp(rng.gauss(0, self.run_cv))
        intervals = [run * math.exp(rng.gauss(0, self.interval_cv))
                     for _ in range(self.intervals)]
        return Sample(value=round(sum(intervals) / self.intervals, 4),
                      intervals=[round(v, 4) for v in intervals], startup=self.startup,
                      seconds=self.startup + self.intervals * interval_seconds + self.teardown)

    def to_dict(self) -> dict[str, float]:
        return {"run_cv": self.run_cv, "interval_cv": self.interval_cv,
                "intervals": self.intervals, "startup": self.startup,
                "teardown": self.teardown}


@dataclass(kw_only=True)
class Surface:
    name: str
    description: str
    synthetic: bool
    unit: str
    maximize: bool
    axes: dict[str, list[Any]]
    metric: str = "throughput"
    configs: dict[str, list[Sample]] = field(default_factory=dict)
    #: Samples of the baselines, by role, with the settings they applied.
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    interval_seconds: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    #: A modelled surface's noise-free means, by configuration key (baselines: the
    #: ``mean`` of their entry), and the run noise its replay draws runs from.
    model_means: dict[str, float] = field(default_factory=dict)
    noise: RunNoise | None = None

    # --- lookup ------------------------------------------------------------------------
    def grid_key(self, applied: Mapping[str, Any]) -> str | None:
        """The configuration ``applied`` falls on, if every axis has a value there."""
        values = {}
        for axis in self.axes:
            value = applied.get(axis, UNSET)
            if value == UNSET:
                return None
            values[axis] = value
        return config_key(values)

    def baseline_entry(self, applied: Mapping[str, Any]) -> dict[str, Any] | None:
        """The baseline whose settings are exactly ``applied``, if one is."""
        key = config_key(applied)
        return next((entry for entry in self.baselines.values()
                     if config_key(entry["applied"]) == key), None)

    def samples_for(self, applied: Mapping[str, Any]) -> list[Sample] | None:
        entry = self.baseline_entry(applied)
        if entry is not None:
            return [s if isinstance(s, Sample) else Sample(**s) for s in entry["samples"]]
        key = self.grid_key(applied)
        return self.configs.get(key) if key is not None else None

    def model_mean(self, applied: Mapping[str, Any]) -> float | None:
        """A modelled surface's noise-free mean of the configuration ``applied``."""
        entry = self.baseline_entry(applied)
        if entry is not None:
            mean = entry.get("mean")
            return float(mean) if mean is not None else None
        key = self.grid_key(applied)
        return self.model_means.get(key) if key is not None else None

    def true_value(self, applied: Mapping[str, Any]) -> float | None:
        """The model's mean on a modelled surface; else the mean of the recorded samples."""
        mean = self.model_mean(applied)
        if mean is not None:
            return mean
        samples = self.samples_for(applied)
        return statistics.fmean(s.value for s in samples) if samples else None

    @property
    def goal(self) -> Goal:
        return Goal("maximize" if self.maximize else "minimize")

    def means(self) -> dict[str, float]:
        return {k: self.model_means.get(k, statistics.fmean(s.value for s in v))
                for k, v in self.configs.items()}

    def optimum(self) -> tuple[dict[str, Any], float]:
        means = self.means()
        best = self.goal.best_of(means, key=lambda k: means[k])
        return json.loads(best), means[best]

    def within(self, fraction: float) -> list[str]:
        """Configurations whose mean is within ``fraction`` of the optimum."""
        _, best = self.optimum()
        limit = self.goal.bound(best, fraction)
        means = self.means()
        return [k for k, v in means.items() if self.goal.at_least_as_good(v, limit)]

    # --- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "synthetic": self.synthetic,
            "unit": self.unit, "maximize": self.maximize, "metric": self.metric,
            "axes": self.axes, "interval_seconds": self.interval_seconds,
            "fingerprint": self.fingerprint, "meta": self.meta,
            "baselines": {role: {"applied": e["applied"],
                                 "samples": [s.to_dict() if isinstance(s, Sample) else s
                                             for s in e["samples"]],
                                 **({"mean": e["mean"]} if "mean" in e else {})}
                          for role, e in self.baselines.items()},
            "configs": [{"knobs": json.loads(k), "samples": [s.to_dict() for s in v],
                         **({"mean": self.model_means[k]} if k in self.model_means else {})}
                        for k, v in self.configs.items()],
            **({"noise": self.noise.to_dict()} if self.noise is not None else {}),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> Surface:
        data = json.loads(Path(path).read_text())
        configs = {config_key(c["knobs"]): [Sample(**s) for s in c["samples"]]
                   for c in data["configs"]}
        model_means = {config_key(c["knobs"]): float(c["mean"]) for c in data["configs"]
                       if "mean" in c}
        noise = data.get("noise")
        return cls(name=data["name"], description=data["description"],
                   synthetic=data["synthetic"], unit=data["unit"], maximize=data["maximize"],
                   metric=data.get("metric", "throughput"), axes=data["axes"],
                   configs=configs, baselines=data.get("baselines", {}),
                   fingerprint=data.get("fingerprint", {}),
                   interval_seconds=data.get("interval_seconds", 1.0),
                   meta=data.get("meta", {}), model_means=model_means,
                   noise=RunNoise(**noise) if noise is not None else None)


def replay(sample: Sample, *, metric: str, interval_seconds: float,
           on_reading: OnReading | None) -> Outcome:
    """Feed a recorded run to the pruner as a real run would, and charge what it cost."""
    for index, value in enumerate(sample.intervals, start=1):
        decision = (on_reading(Reading(metric, value, interval=index)) if on_reading
                    else Decision.CONTINUE)
        spent = sample.startup + index * interval_seconds
        intervals = {metric: sample.intervals[:index]}
        if decision is Decision.ENOUGH:
            seen = sample.intervals[:index]
            return Outcome(status=Status.OK, reason="stable early", seconds=spent,
                           metrics={metric: statistics.fmean(seen)}, intervals=intervals)
        if decision is Decision.PRUNE:
            return Outcome(status=Status.PRUNED, reason=f"stopped early at interval {index}: "
                           f"{metric}={value:g} was clearly worse than the best so far",
                           seconds=spent, intervals=intervals)
    return Outcome(status=Status.OK, reason="", metrics={metric: sample.value},
                   intervals={metric: list(sample.intervals)}, seconds=sample.seconds)


class ReplayBackend(Backend):
    """Answers a run from a surface, in-process; keeps the benchmark-seconds it charged."""

    def __init__(self, surface: Surface, *, seed: int, startup_saving: float = 0.0) -> None:
        """``startup_saving``: seconds less start-up per run than recorded (the recordings
        are of fresh processes; the fork launcher saves the import and the teardown)."""
        self.surface = surface
        self.rng = random.Random(seed)
        self.startup_saving = startup_saving
        self.seconds = 0.0
        self.measured_seconds = 0.0
        self.runs = 0

    def run(self, request: RunRequest,
            on_reading: OnReading | None) -> Outcome:
        samples = self.surface.samples_for(request.applied)
        if not samples:
            return Outcome(status=Status.FAILED, reason="no recorded sample for "
                           f"{dict(request.applied)} on surface {self.surface.name}")
        noise = self.surface.noise
        mean = self.surface.model_mean(request.applied) if noise is not None else None
        if noise is not None and mean is not None:  # a fresh run of the model
            sample = noise.sample(mean, self.rng, interval_seconds=self.surface.interval_seconds)
        else:
            sample = self.rng.choice(samples)
        if self.startup_saving:
            saved = min(self.startup_saving, max(0.0, sample.startup - 0.5))
            sample = Sample(value=sample.value, intervals=sample.intervals,
                            startup=sample.startup - saved, seconds=sample.seconds - saved)
        outcome = replay(sample, metric=request.metric,
                         interval_seconds=self.surface.interval_seconds, on_reading=on_reading)
        self.runs += 1
        self.seconds += outcome.seconds
        self.measured_seconds += max(0.0, outcome.seconds - sample.startup)
        return outcome
