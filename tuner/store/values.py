"""The typed values of tuner's attributes (``tuner.store.attributes`` says under which key
each one is stored, and who writes it).

Each is a frozen dataclass with ``from_dict`` (the JSON read back from the database) and
``to_dict`` (the JSON to store). A value read back keeps the JSON it came from (``stored``)
and ``to_dict`` returns that JSON unchanged, so a record written by an older tuner, with a
field more or less, shows in the API exactly as it is stored. A value built in code (to be
written) has no ``stored`` JSON: ``to_dict`` writes its fields. Build a new value to write
rather than ``dataclasses.replace`` one that was read.

Reading is lenient where older records may lack a field (it reads as ``None`` or empty) and
strict about the type of what is there: a malformed value (rewritten by hand, say) raises
``TypeError`` or ``ValueError``, which ``tuner.results.summary.MALFORMED`` names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The JSON a value was read from (None for a value built in code).
Stored = Mapping[str, Any]


def _mapping(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"{what} must be a JSON object, not {type(raw).__name__}")
    return raw


def _number(raw: Any, what: str) -> float | None:
    """A stored number as it is (an int stays an int: its JSON is kept), or None."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError(f"{what} must be a number, not {type(raw).__name__}")
    return raw


def _integer(raw: Any, what: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"{what} must be an integer, not {type(raw).__name__}")
    return raw


def _numbers(raw: Any, what: str) -> tuple[float, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str | Mapping) or not isinstance(raw, Sequence):
        raise TypeError(f"{what} must be a list of numbers, not {type(raw).__name__}")
    out = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{what} must be a list of numbers, not of {type(value).__name__}")
        out.append(value)
    return tuple(out)


def _text(raw: Any, what: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise TypeError(f"{what} must be text, not {type(raw).__name__}")
    return raw


@dataclass(frozen=True, kw_only=True)
class Noise:
    """The study's noise floor: the spread of the defaults trial's runs (``noise``)."""

    samples: tuple[float, ...] = ()
    #: Coefficient of variation of whole runs.
    run_cv: float | None = None
    #: Mean coefficient of variation of the intervals within one run (pruning sees it).
    interval_cv: float | None = None
    #: Relative difference below which two single runs cannot be told apart.
    floor: float | None = None
    warning: str | None = None
    #: The defaults trial that measured it.
    trial: int | None = None
    stored: Stored | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, raw: Any) -> Noise:
        data = _mapping(raw, "noise")
        return cls(samples=_numbers(data.get("samples"), "noise.samples"),
                   run_cv=_number(data.get("run_cv"), "noise.run_cv"),
                   interval_cv=_number(data.get("interval_cv"), "noise.interval_cv"),
                   floor=_number(data.get("floor"), "noise.floor"),
                   warning=_text(data.get("warning"), "noise.warning"),
                   trial=_integer(data.get("trial"), "noise.trial"), stored=data)

    def to_dict(self) -> dict[str, Any]:
        if self.stored is not None:
            return dict(self.stored)
        return {"samples": list(self.samples), "run_cv": self.run_cv,
                "interval_cv": self.interval_cv, "floor": self.floor,
                "warning": self.warning, "trial": self.trial}


def _texts(raw: Any, what: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str | Mapping) or not isinstance(raw, Sequence):
        raise TypeError(f"{what} must be a list of text, not {type(raw).__name__}")
    return tuple(str(value) for value in raw)


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """What a trial's workload process loaded (``loaded``): the threading, BLAS and
    allocator libraries it mapped (``tuner.execution.libraries`` names; None: unknown) and
    the framework build it reported (TensorFlow's oneDNN threading, PyTorch's parallel
    backend; None: not reported)."""

    libraries: tuple[str, ...] | None = None
    build: Mapping[str, Any] | None = None
    stored: Stored | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, raw: Any) -> Loaded:
        data = _mapping(raw, "loaded")
        build = data.get("build")
        return cls(libraries=_texts(data.get("libraries"), "loaded.libraries"),
                   build=None if build is None else _mapping(build, "loaded.build"),
                   stored=data)

    def to_dict(self) -> dict[str, Any]:
        if self.stored is not None:
            return dict(self.stored)
        return {"libraries": None if self.libraries is None else list(self.libraries),
                "build": None if self.build is None else dict(self.build)}

    @property
    def known(self) -> bool:
        return self.libraries is not None


#: How screening decided about a knob: from the libraries the baselines' processes mapped
#: (no round run), or by measuring it in interleaved rounds.
BY_LIBRARIES = "libraries"
MEASURED = "measured"


@dataclass(frozen=True, kw_only=True)
class Screened:
    """What screening found for one knob: inert (left at the runtime's value) or kept."""

    inert: bool
    #: One line for people: each probe's speedup over the defaults, then the conclusion.
    evidence: str
    probes: tuple[Any, ...] = ()
    #: Each probe's paired speedup (``stats.Speedup.to_dict``), by the probe's text.
    speedups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    margin: float | None = None
    rounds: int | None = None
    #: ``measured`` (interleaved rounds) or ``libraries`` (inert by construction: no library
    #: that reads the knob was mapped in the baselines' processes). Older records lack it:
    #: they were measured.
    basis: str = MEASURED
    #: The libraries that read the knob (its ``needs_library``), for a decision by libraries.
    needs: tuple[str, ...] = ()
    #: What each baseline loaded (``Loaded.to_dict`` with its ``trial``), by role, for a
    #: decision by libraries.
    loaded: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    stored: Stored | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, raw: Any) -> Screened:
        data = _mapping(raw, "screening entry")
        return cls(inert=bool(data.get("inert")),
                   evidence=_text(data.get("evidence"), "screening evidence") or "",
                   probes=tuple(data.get("probes") or ()),
                   speedups=_mapping(data.get("speedups") or {}, "screening speedups"),
                   margin=_number(data.get("margin"), "screening margin"),
                   rounds=_integer(data.get("rounds"), "screening rounds"),
                   basis=_text(data.get("basis"), "screening basis") or MEASURED,
                   needs=_texts(data.get("needs"), "screening needs") or (),
                   loaded=_mapping(data.get("loaded") or {}, "screening loaded"),
                   stored=data)

    def to_dict(self) -> dict[str, Any]:
        if self.stored is not None:
            return dict(self.stored)
        out = {"probes": list(self.probes), "speedups": dict(self.speedups),
               "margin": self.margin, "rounds": self.rounds, "inert": self.inert,
               "evidence": self.evidence, "basis": self.basis}
        if self.basis == BY_LIBRARIES:
            out.update(needs=list(self.needs), loaded={k: dict(v)
                                                       for k, v in self.loaded.items()})
        return out


@dataclass(frozen=True, kw_only=True)
class Screening:
    """The screening of the study's candidate knobs (``screening``; empty: nothing to
    screen)."""

    knobs: Mapping[str, Screened] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Any) -> Screening:
        return cls(knobs={str(name): Screened.from_dict(entry)
                          for name, entry in _mapping(raw, "screening").items()})

    def to_dict(self) -> dict[str, Any]:
        return {name: entry.to_dict() for name, entry in self.knobs.items()}

    @property
    def inert(self) -> dict[str, str]:
        """The knobs found inert, with the evidence."""
        return {name: entry.evidence for name, entry in self.knobs.items() if entry.inert}


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """The interleaved confirmation of the best configurations (``confirmation``)."""

    #: Each configuration compared: label, trial, applied, values, throughput, speedups.
    entries: tuple[Mapping[str, Any], ...] = ()
    #: The label of the recommendation (None when nothing ran).
    best: str | None = None
    floor: float | None = None
    level: float | None = None
    comparisons: int | None = None
    #: The counted trials when it ran (a study that goes on is confirmed again).
    at_trials: int | None = None
    rounds: int | None = None
    stored: Stored | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, raw: Any) -> Confirmation:
        data = _mapping(raw, "confirmation")
        entries = data.get("entries") or ()
        return cls(entries=tuple(_mapping(e, "confirmation entry") for e in entries),
                   best=_text(data.get("best"), "confirmation best"),
                   floor=_number(data.get("floor"), "confirmation floor"),
                   level=_number(data.get("level"), "confirmation level"),
                   comparisons=_integer(data.get("comparisons"), "confirmation comparisons"),
                   at_trials=_integer(data.get("at_trials"), "confirmation at_trials"),
                   rounds=_integer(data.get("rounds"), "confirmation rounds"), stored=data)

    def to_dict(self) -> dict[str, Any]:
        if self.stored is not None:
            return dict(self.stored)
        out: dict[str, Any] = {"entries": [dict(e) for e in self.entries], "best": self.best,
                               "floor": self.floor, "level": self.level,
                               "comparisons": self.comparisons}
        if self.at_trials is not None:
            out["at_trials"] = self.at_trials
        if self.rounds is not None:
            out["rounds"] = self.rounds
        return out

    @property
    def winner(self) -> Mapping[str, Any] | None:
        """The entry of the recommendation, if any."""
        return next((e for e in self.entries if e.get("label") == self.best), None)


@dataclass(frozen=True, kw_only=True)
class Run:
    """One run of a trial (``execution.runner.Outcome.to_dict``; the output tail as its last
    lines when the run succeeded, whole when it failed)."""

    status: str
    reason: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    returncode: int | None = None
    tail: str | tuple[str, ...] = ""
    stored: Stored | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, raw: Any) -> Run:
        data = _mapping(raw, "run")
        tail = data.get("tail") or ""
        return cls(status=_text(data.get("status"), "run status") or "",
                   reason=_text(data.get("reason"), "run reason") or "",
                   metrics=_mapping(data.get("metrics") or {}, "run metrics"),
                   seconds=_number(data.get("seconds"), "run seconds") or 0.0,
                   returncode=_integer(data.get("returncode"), "run returncode"),
                   tail=tail if isinstance(tail, str) else tuple(map(str, tail)), stored=data)

    @classmethod
    def of(cls, outcome: Mapping[str, Any]) -> Run:
        """The run of ``outcome.to_dict()`` (kept whole, as it is stored)."""
        return cls.from_dict(outcome)

    def to_dict(self) -> dict[str, Any]:
        if self.stored is not None:
            return dict(self.stored)
        return {"status": self.status, "reason": self.reason, "metrics": dict(self.metrics),
                "returncode": self.returncode, "seconds": self.seconds,
                "tail": self.tail if isinstance(self.tail, str) else list(self.tail)}


def _start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None if no such process)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True, kw_only=True)
class Worker:
    """A tuner process: host name, pid and the pid's start time (pids are reused)."""

    host: str | None = None
    pid: int | None = None
    started: int | None = None

    @classmethod
    def here(cls, hostname: str) -> Worker:
        """This process."""
        pid = os.getpid()
        return cls(host=hostname, pid=pid, started=_start_time(pid))

    @classmethod
    def from_dict(cls, raw: Any) -> Worker:
        data = _mapping(raw or {}, "worker")
        pid = data.get("pid")
        started = data.get("started")
        return cls(host=None if data.get("host") is None else str(data.get("host")),
                   pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                   started=started if isinstance(started, int) else None)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "started": self.started}

    def is_dead(self, hostname: str) -> bool:
        """True only when we can tell: it ran on this host and its process is gone."""
        if self.host != hostname or self.pid is None:
            return False
        started = _start_time(self.pid)
        return started is None or started != self.started


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A once-per-study job (screening, a confirmation) taken by one worker."""

    worker: Worker
    #: When it was claimed (epoch seconds).
    at: float = 0.0

    @classmethod
    def from_dict(cls, raw: Any) -> Claim:
        data = _mapping(raw, "claim")
        return cls(worker=Worker.from_dict(data.get("worker") or {}),
                   at=float(data.get("at", 0)))

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker.to_dict(), "at": self.at}


@dataclass(frozen=True, kw_only=True)
class Status:
    """The study's place in the service's life (``status``, ``status_reason``,
    ``status_at``): queued, running, stopped, done or failed; None for a study no one
    queued or ran yet."""

    state: str | None = None
    reason: str = ""
    #: When it was set (epoch seconds).
    at: float | None = None
