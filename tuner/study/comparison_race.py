"""The paired confirmation of two studies' bests (``tuner compare A B``): a's best and b's
best run again on this machine in interleaved rounds (a b, b a, a b, ...: drift and position
effects fall on both alike, and the runs of one round are compared as a pair), each as its
own study ran it: its stored study file fitted to this host, its workload, its launcher, its
knob values, every run a fresh process under the host lock (one measurement per machine) and
the system-settings journal where a knob changes the machine (``Measurer``).

The rounds are sequential as the confirmation's are (``tuner.study.sequential``): the larger
``confirm.rounds`` of the two studies first, then about 1.5 times as many at each look up to
the larger ``confirm.max_rounds`` (or ``--rounds``/``--max-rounds``), stopping at the first
look where the interval of the ratio is within the target precision (the study a's
``confirm.precision``; ``auto``: the larger noise floor of the two, at least 2%). The ratio
is b's best over a's, goal-aware (> 1: b's is better), with its interval; a difference it
does not show when the rounds run out with the interval still wider than the target is
``inconclusive``, never "no difference".

The record is kept in both studies (the study attribute ``comparisons``), so the service
shows it without running anything. ``PairBench`` also says which host class this machine is
for each study (``here``): the confirmation runs only where both studies were measured
(``tuner.results.comparison.Comparison.blockers``).
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import optuna
from pydantic import ValidationError

from tuner import stats
from tuner.errors import TunerError
from tuner.execution.backend import Backend
from tuner.execution.forkserver import backend_for
from tuner.execution.host_lock import HostLock, LockedBackend
from tuner.execution.runtimes import fingerprint_of
from tuner.goal import Goal
from tuner.host import Host
from tuner.results.comparison import Comparison, ComparisonError, Here, Side
from tuner.settings import Settings
from tuner.space.search_space import SearchSpace, SpaceError, build_space
from tuner.spec.models import StudySpec
from tuner.store.attributes import COMPARISONS, SPEC
from tuner.store.gate import StudyGate
from tuner.study.events import Say, ignore
from tuner.study.interleave import Entry, paired
from tuner.study.measure import Measurer
from tuner.study.sequential import Looks, Stopped, half_width, run_looks, target_precision
from tuner.study.trial import study_floor

#: Records kept in a study's ``comparisons`` (the oldest go first).
HISTORY_LIMIT = 50


@dataclass(frozen=True, kw_only=True)
class Stored:
    """A study and the storage that holds it."""

    study: optuna.Study
    storage_url: str


@dataclass(frozen=True, kw_only=True)
class PairOptions:
    """The round budget (None: from the studies' ``confirm`` sections) and the obstacles
    ``--force`` overrode (kept in the record)."""

    rounds: int | None = None
    max_rounds: int | None = None
    forced: tuple[str, ...] = ()


@dataclass
class Contender:
    """One side of the race: its best as an interleaved entry, and how its runs are made."""

    side: Side
    entry: Entry
    measurer: Measurer


@dataclass
class PairRace:
    """a's best against b's best, one comparison, examined at the looks."""

    a: Contender
    b: Contender
    goal: Goal
    floor: float
    target: float
    rounds: int = 0
    level: float = 0.95
    met: bool = False
    say: Say = field(default=ignore)

    def add_rounds(self, count: int) -> None:
        for _ in range(count):
            order = (self.a, self.b) if self.rounds % 2 == 0 else (self.b, self.a)
            for contender in order:
                outcome = contender.measurer.run(contender.entry.applied)
                metric = contender.measurer.metric
                contender.entry.values.append(outcome.metrics.get(metric) if outcome.ok
                                              else None)
                contender.entry.reasons.append(outcome.reason)
            self.rounds += 1

    def speedup(self, level: float) -> stats.Speedup | None:
        """b's best over a's at ``level`` (None under 2 rounds where both runs succeeded)."""
        b, a = paired(self.b.entry, self.a.entry)
        if len(a) < 2:
            return None
        return stats.paired_speedup(b, a, floor=self.floor, goal=self.goal, level=level)

    def settled(self, level: float) -> bool:
        """Stop when the interval is within the target; also when nothing could be paired
        (more rounds of failing runs buy nothing)."""
        self.level = level
        speedup = self.speedup(level)
        if speedup is None:
            return True
        width = half_width(speedup)
        self.met = width <= self.target
        self.say(f"after {self.rounds} rounds: {self.b.side.name} over {self.a.side.name} "
                 f"{speedup.ratio:.3f}x [{speedup.low:.3f}, {speedup.high:.3f}] "
                 f"(+/-{width:.1%}, target +/-{self.target:.1%})")
        return self.met

    def record(self, stopped: Stopped, looks: Looks) -> dict[str, Any]:
        """What is kept: both sides, the ratio (b over a) with its interval, the verdict."""
        speedup = self.speedup(stopped.level)
        record: dict[str, Any] = {
            "a": _side_record(self.a), "b": _side_record(self.b),
            "metric": self.a.side.metric, "unit": self.a.side.unit,
            "direction": self.goal.direction, "rounds": stopped.rounds,
            "level": stopped.level, "floor": self.floor,
            "ratio": None, "low": None, "high": None, "verdict": "failed",
            "precision": {"target": self.target, "reached": None, "settled": False,
                          "looks": list(looks.rounds)}}
        if speedup is None:
            record["failures"] = _failures(self.a, self.b)
            return record
        width = half_width(speedup)
        verdict: str = speedup.verdict
        if verdict == "no measurable difference" and width > self.target:
            verdict = "inconclusive"
        record.update(ratio=speedup.ratio, low=speedup.low, high=speedup.high,
                      verdict=verdict)
        record["precision"].update(reached=width, settled=self.met)
        return record


def _side_record(contender: Contender) -> dict[str, Any]:
    entry = contender.entry
    return {"study": contender.side.name, "trial": entry.trial, "knobs": dict(entry.applied),
            "values": list(entry.values)}


def _failures(*contenders: Contender) -> str:
    reasons = {f"{c.side.name}: {r}" for c in contenders
               for v, r in zip(c.entry.values, c.entry.reasons, strict=False) if v is None and r}
    return "; ".join(sorted(reasons))[:500] or "the runs failed"


def stored_spec(study: optuna.Study) -> StudySpec:
    """The study file a study was stored with, validated again."""
    try:
        return StudySpec.model_validate(SPEC.get(study))
    except (ValidationError, ValueError, TypeError) as exc:
        raise ComparisonError(f"study {study.study_name!r}: its stored study file does not "
                              f"validate under this tuner ({(str(exc).splitlines() or [''])[0]})"
                              ) from None


class PairBench:
    """This machine, for the paired confirmation: its host class for each study, and the
    race of the two bests. ``backend`` replaces the backends the studies' launchers ask for
    (tests)."""

    def __init__(self, host: Host, settings: Settings, backend: Backend | None = None) -> None:
        self.host = host
        self.settings = settings
        self.backend = backend

    def here(self, a: optuna.Study, b: optuna.Study) -> Here:
        """This machine's host class for each study (with its runtime), or why it cannot
        tell (a runtime missing here, a stored study that no longer validates)."""
        try:
            classes = [fingerprint_of(self.host, stored_spec(s).workload.python,
                                      settings=self.settings).host_class for s in (a, b)]
        except TunerError as exc:
            return Here(problem=str(exc))
        return Here(a=classes[0], b=classes[1])

    def confirm(self, comparison: Comparison, a: Stored, b: Stored, *,
                options: PairOptions, say: Say = ignore) -> dict[str, Any]:
        """Race a's best against b's best, keep the record in both studies, return it."""
        spaces = [self._space(s.study) for s in (a, b)]
        floor = max(study_floor(a.study), study_floor(b.study))
        looks = looks_of(spaces, options)
        backends = self._backends([space.spec.launcher for space in spaces])
        try:
            race = PairRace(*self._contenders(comparison, spaces, backends),
                            goal=comparison.a.goal, floor=floor, say=say,
                            target=target_precision(spaces[0].spec.confirm.precision, floor))
            say(f"confirming {a.study.study_name}'s best (trial {race.a.entry.trial}) against "
                f"{b.study.study_name}'s best (trial {race.b.entry.trial}) in interleaved "
                f"rounds until the ratio is within +/-{race.target:.1%} (looks after "
                f"{', '.join(map(str, looks.rounds))} rounds)")
            stopped = run_looks(looks, add_rounds=race.add_rounds, settled=race.settled,
                                comparisons=1)
        finally:
            if self.backend is None:
                for backend in backends.values():
                    backend.close()
        record = race.record(stopped, looks)
        here = comparison.here or self.here(a.study, b.study)
        record.update(id=uuid.uuid4().hex, at=time.time(), host=socket.gethostname(),
                      measured_on=here.a, forced=list(options.forced))
        keep(record, a, b)
        return record

    def _space(self, study: optuna.Study) -> SearchSpace:
        try:
            return build_space(stored_spec(study), self.host)
        except SpaceError as exc:
            raise ComparisonError(f"study {study.study_name!r} does not fit this machine: "
                                  f"{exc}") from None

    def _backends(self, launchers: list[str]) -> dict[str, Backend]:
        """One backend per launcher (a fork server shared where both ask for one), every run
        under the host lock."""
        if self.backend is not None:
            return {launcher: self.backend for launcher in launchers}
        lock = HostLock(self.host, self.settings.lock_dir)
        return {launcher: LockedBackend(backend_for(launcher), lock)
                for launcher in dict.fromkeys(launchers)}

    def _contenders(self, comparison: Comparison, spaces: list[SearchSpace],
                    backends: dict[str, Backend]) -> tuple[Contender, Contender]:
        """Each side's best, measured through its own study's space and launcher."""
        a, b = (Contender(side=side, measurer=Measurer(space, self.settings,
                                                       backends[space.spec.launcher]),
                          entry=Entry(label=side.name, applied=dict(side.answer.knobs),
                                      trial=side.answer.trial))
                for side, space in zip((comparison.a, comparison.b), spaces, strict=True))
        return a, b


def looks_of(spaces: list[SearchSpace], options: PairOptions) -> Looks:
    """The looks: ``options``' rounds, else the larger of the studies' ``confirm`` ones."""
    first = options.rounds or max(s.spec.confirm.rounds for s in spaces)
    most = options.max_rounds or max(s.spec.confirm.max_rounds for s in spaces)
    return Looks.growing(first, max(first, most))


def keep(record: dict[str, Any], *studies: Stored) -> None:
    """Append ``record`` to the ``comparisons`` of each study (under its study gate)."""
    for stored in studies:
        gate = StudyGate(stored.storage_url, stored.study.study_name)
        try:
            with gate.hold():
                history = COMPARISONS.get(stored.study)
                COMPARISONS.put(stored.study, [*history, record][-HISTORY_LIMIT:])
        finally:
            gate.close()
