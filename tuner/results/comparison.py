"""Two studies side by side (``tuner compare A B``, ``GET /studies/{a}/compare/{b}``): the
answer of each (``tuner.results.answer``: the confirmed best and its interval, or the search
value labelled as such), its metric, unit and goal, the machine it was measured on, the
difference between the two bests' knobs, whether both measure the same workload, and the
paired confirmations of the two bests already stored (``COMPARISONS``).

Nothing here measures: the absolute values of two studies were taken at different times (on
different machines, perhaps) and are never divided by each other. A ratio of the two bests
comes only from a paired interleaved confirmation (``tuner.study.comparison_race``), which
runs only when it can mean something: same metric and goal, both studies measured on one
host class and on this machine's, the same workload (``blockers`` says what stands in the
way, and which obstacles ``--force`` may override).

Every ratio is stated as *b over a*, goal-aware: how many times better b's best is than a's
(b/a for a throughput, a/b for a latency), so > 1 always means b's best is the better.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna

from tuner.errors import TunerError
from tuner.goal import Goal
from tuner.results.answer import Answer
from tuner.results.summary import MALFORMED, summarize, why_unreadable
from tuner.store.attributes import COMPARISONS, FINGERPRINT, HOST_CLASS, spec_of

#: Words for the two sides, in every message.
SIDES = ("a", "b")


class ComparisonError(TunerError):
    """Two studies that cannot be compared (one has no answer, or cannot be read)."""


@dataclass(frozen=True, kw_only=True)
class Side:
    """One study's part of a comparison: its answer and what it was measured on."""

    name: str
    metric: str
    unit: str
    goal: Goal
    answer: Answer
    host_class: str | None
    cpu_model: str
    #: The stored study's ``workload`` section, defaults filled in.
    workload: dict[str, Any]
    workload_label: str
    #: The knobs its study file names (tuned or fixed).
    knob_names: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.name, "metric": self.metric, "unit": self.unit,
                "direction": self.goal.direction, "answer": self.answer.to_dict(),
                "measured_on": self.host_class, "cpu_model": self.cpu_model,
                "workload": self.workload_label, "knob_names": sorted(self.knob_names)}


def side_of(study: optuna.Study) -> Side:
    """``study``'s side; ``ComparisonError`` when it has no completed trial or cannot be
    read."""
    name = study.study_name
    try:
        summary = summarize(study)
        attrs = study.user_attrs
        spec = spec_of(attrs)
        host_class = HOST_CLASS.get(attrs)
        cpu_model = str(FINGERPRINT.get(attrs).get("cpu_model", ""))
    except MALFORMED as exc:
        raise ComparisonError(f"study {name!r} {why_unreadable(exc)}") from exc
    if summary.answer is None:
        raise ComparisonError(f"study {name!r} has no completed trial yet: it has no best "
                              "to compare (run it first: `tuner tune`)")
    workload = spec.get("workload")
    knobs = spec.get("knobs")
    return Side(name=name, metric=summary.metric, unit=summary.unit, goal=summary.goal,
                answer=summary.answer, host_class=host_class, cpu_model=cpu_model,
                workload=dict(workload) if isinstance(workload, dict) else {},
                workload_label=summary.workload,
                knob_names=frozenset(knobs) if isinstance(knobs, dict) else frozenset())


@dataclass(frozen=True, kw_only=True)
class KnobRow:
    """One knob of either best: its value in each (absent: the best does not set it)."""

    knob: str
    in_a: bool
    in_b: bool
    a: Any = None
    b: Any = None
    #: Why a knob only one best sets is absent from the other.
    note: str = ""

    @property
    def status(self) -> str:
        if self.in_a and self.in_b:
            return "same" if self.a == self.b else "different"
        return "only a" if self.in_a else "only b"

    def to_dict(self) -> dict[str, Any]:
        return {"knob": self.knob, "status": self.status, "a": self.a, "b": self.b,
                "in_a": self.in_a, "in_b": self.in_b, "note": self.note}


def knob_rows(a: Side, b: Side) -> list[KnobRow]:
    """Every knob either best sets, the differences first (by name), then the same."""
    knobs_a, knobs_b = a.answer.knobs, b.answer.knobs
    rows = []
    for knob in sorted(set(knobs_a) | set(knobs_b)):
        in_a, in_b = knob in knobs_a, knob in knobs_b
        note = ""
        if in_a != in_b:
            other = b if in_a else a
            label = "b" if in_a else "a"
            note = (f"{label}'s best leaves it at its default" if knob in other.knob_names
                    else f"not a knob of {label} ({other.name})")
        rows.append(KnobRow(knob=knob, in_a=in_a, in_b=in_b, a=knobs_a.get(knob),
                            b=knobs_b.get(knob), note=note))
    return sorted(rows, key=lambda r: (r.status == "same", r.knob))


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """The leaves of parsed JSON with their paths: ``workload.params.batch_size``,
    ``workload.command[3]``."""
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _flat(f"{prefix}.{key}", value[key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flat(f"{prefix}[{index}]", item)
    else:
        yield prefix, value


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def workload_differences(a: Side, b: Side) -> list[str]:
    """``workload.params.batch_size: 32 (a) vs 64 (b)`` for each field of the two stored
    workloads that differs ([] when they are the same)."""
    flat_a, flat_b = dict(_flat("workload", a.workload)), dict(_flat("workload", b.workload))
    out = []
    for key in sorted(set(flat_a) | set(flat_b)):
        if flat_a.get(key) != flat_b.get(key):
            out.append(f"{key}: {_shown(flat_a.get(key, 'unset'))} (a) vs "
                       f"{_shown(flat_b.get(key, 'unset'))} (b)")
    return out


def incomparable(a: Side, b: Side) -> str | None:
    """Why the two studies' values cannot be compared at all (None when they can)."""
    if a.metric != b.metric:
        return f"a measures {a.metric!r}, b measures {b.metric!r}"
    if a.goal != b.goal:
        return f"a's {a.metric} is to {a.goal.direction}, b's to {b.goal.direction}"
    if a.unit and b.unit and a.unit != b.unit:
        return f"a's {a.metric} is in {a.unit}, b's in {b.unit}"
    return None


@dataclass(frozen=True, kw_only=True)
class Here:
    """This machine's host class for each study (its runtime's), or why it cannot run them."""

    a: str | None = None
    b: str | None = None
    problem: str = ""


@dataclass(frozen=True)
class Blocker:
    """What stands in the way of a paired confirmation, and whether ``--force`` may
    override it."""

    reason: str
    forceable: bool


@dataclass(frozen=True, kw_only=True)
class Comparison:
    a: Side
    b: Side
    knobs: list[KnobRow]
    workload_differences: list[str]
    #: Why their values cannot be compared (different metric, goal or unit), or None.
    incomparable: str | None
    #: This machine's host classes (None: not asked, as in the service).
    here: Here | None = None
    #: The paired confirmations stored for the two, as b over a, oldest first.
    stored: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same_workload(self) -> bool:
        return not self.workload_differences

    @property
    def same_host_class(self) -> bool:
        return self.a.host_class is not None and self.a.host_class == self.b.host_class

    @property
    def differences(self) -> list[KnobRow]:
        return [row for row in self.knobs if row.status != "same"]

    def blockers(self) -> list[Blocker]:
        """What stands in the way of confirming the two bests here, in the order it is
        checked ([]: nothing). Without ``here``, the machine is not judged."""
        out = []
        if self.incomparable:
            out.append(Blocker(f"{self.incomparable}: a ratio of the two is meaningless",
                               forceable=False))
            return out
        a, b = self.a, self.b
        if not self.same_host_class:
            out.append(Blocker(
                f"a was measured on host class {a.host_class or 'unknown'} ({a.cpu_model or '?'}), "
                f"b on {b.host_class or 'unknown'} ({b.cpu_model or '?'}): a ratio of values "
                "measured on different machines is not a speedup", forceable=True))
        here = self.here
        if here is not None:
            if here.problem:
                out.append(Blocker(f"this machine cannot run them: {here.problem}",
                                   forceable=False))
            elif here.a != a.host_class or here.b != b.host_class:
                mine = here.a if here.a == here.b else f"{here.a} for a, {here.b} for b"
                out.append(Blocker(
                    f"this machine is host class {mine}, not the one the studies were "
                    "measured on: run `tuner compare` on a machine of that class",
                    forceable=True))
        if self.workload_differences:
            out.append(Blocker(
                "the workloads differ (" + "; ".join(self.workload_differences) + "): the "
                "ratio would compare different work, not settings", forceable=True))
        return out

    @property
    def latest(self) -> dict[str, Any] | None:
        """The newest stored paired confirmation (b over a), if any."""
        return self.stored[-1] if self.stored else None

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(),
                "knobs": [row.to_dict() for row in self.knobs],
                "same_workload": self.same_workload,
                "workload_differences": self.workload_differences,
                "same_host_class": self.same_host_class,
                "comparable": self.incomparable is None, "incomparable": self.incomparable,
                "blockers": [{"reason": b.reason, "forceable": b.forceable}
                             for b in self.blockers()],
                "confirmations": self.stored}


def compare(a: optuna.Study, b: optuna.Study, *, here: Here | None = None) -> Comparison:
    """The comparison of two studies (``ComparisonError`` when one has no answer)."""
    side_a, side_b = side_of(a), side_of(b)
    return Comparison(a=side_a, b=side_b, knobs=knob_rows(side_a, side_b),
                      workload_differences=workload_differences(side_a, side_b),
                      incomparable=incomparable(side_a, side_b), here=here,
                      stored=stored_confirmations(a, b))


#: A verdict as seen from the other side.
FLIPPED = {"win": "loss", "loss": "win"}


def study_of(record: dict[str, Any], side: str) -> str | None:
    """The name of the study on ``side`` (a or b) of a stored confirmation."""
    part = record.get(side)
    name = part.get("study") if isinstance(part, dict) else None
    return name if isinstance(name, str) else None


def oriented(record: dict[str, Any], a: str) -> dict[str, Any]:
    """A stored confirmation with ``a`` as its a side: as stored, or with the sides swapped
    and the ratio and its interval inverted."""
    if study_of(record, "a") == a:
        return record
    out = {**record, "a": record.get("b"), "b": record.get("a")}
    for key, inverse in (("ratio", "ratio"), ("low", "high"), ("high", "low")):
        value = record.get(inverse)
        out[key] = 1.0 / value if isinstance(value, int | float) and value else None
    verdict = record.get("verdict")
    out["verdict"] = FLIPPED.get(verdict, verdict) if isinstance(verdict, str) else verdict
    return out


def stored_confirmations(a: optuna.Study, b: optuna.Study) -> list[dict[str, Any]]:
    """The paired confirmations of the two studies' bests kept in either of them (the same
    record is kept in both), as b over a, oldest first. A study whose record cannot be read
    has none."""
    pair = {a.study_name, b.study_name}
    found: dict[str, dict[str, Any]] = {}
    for study in (a, b):
        try:
            records = COMPARISONS.get(study)
        except MALFORMED:
            continue
        for record in records:
            names = {study_of(record, side) for side in SIDES}
            if names == pair and isinstance(record.get("id"), str):
                found.setdefault(record["id"], oriented(record, a.study_name))
    return sorted(found.values(), key=lambda r: float(r.get("at") or 0.0))
