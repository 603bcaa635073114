"""Reading metrics from a workload's output, line by line as it streams.

* ``protocol``: tuner's own line protocol. ``METRIC throughput=12.5 unit=images/s
  interval=3`` per interval, ``FINAL throughput=12.4 unit=images/s`` at the end; numeric
  ``key=value`` pairs are metrics, others are labels. ``SETTINGS {json}`` reports what the
  process actually ran with, ``TIMING {json}`` where its seconds went.
* ``regex``: every match of a pattern with named groups is a reading of each group; the
  last match is the result.
* ``json``: lines that are JSON objects holding the key (a dotted path) are readings.
* presets for known programs: ``tf_cnn_benchmarks`` (``total images/sec: X``), ``wavenet``
  (``Average Throughput of whole run: Samples / sec: X``), ``gnmt`` (``Overall Throughput :
  X sentences per sec.``).

What readings come to is defined once, here: ``final_values`` (each metric's FINAL reading,
else its last) and ``interval_values`` (each metric's per-interval values). A parser answers
them for its own readings; the runner asks them of a trial's readings (its instances
combined).
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tuner.spec.models import ParserSpec


@dataclass(frozen=True)
class Reading:
    """One metric value from one line. ``final`` readings are the run's result; the others
    are per-interval values (``interval`` counts from 1)."""

    name: str
    value: float
    interval: int | None = None
    final: bool = False


def final_values(readings: Iterable[Reading]) -> dict[str, float]:
    """Each metric's value: its FINAL reading if any, else its last interval reading."""
    out: dict[str, float] = {}
    finals: dict[str, float] = {}
    for reading in readings:
        (finals if reading.final else out)[reading.name] = reading.value
    out.update(finals)
    return out


def interval_values(readings: Iterable[Reading]) -> dict[str, list[float]]:
    """Each metric's per-interval values, in order (FINAL readings left out)."""
    out: dict[str, list[float]] = {}
    for reading in readings:
        if not reading.final:
            out.setdefault(reading.name, []).append(reading.value)
    return out


class Parser(ABC):
    """Call order: ``feed`` each output line as it arrives (it returns the readings in that
    line), then ``result`` once the process has exited.

    Besides its readings a parser keeps what the workload said about itself: ``reported``,
    the values it actually ran with (its ``SETTINGS`` line), and ``timing``, where its
    seconds went (its ``TIMING`` line)."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.reported: dict[str, Any] | None = None
        self.timing: dict[str, float] | None = None

    @abstractmethod
    def parse_line(self, line: str) -> list[Reading]:
        """The readings in one line (no state)."""

    def feed(self, line: str) -> list[Reading]:
        found = self.parse_line(line)
        self.readings.extend(found)
        return found

    def result(self) -> dict[str, float]:
        """Final value of each metric: its FINAL reading if any, else its last reading."""
        return final_values(self.readings)

    def intervals(self, name: str) -> list[float]:
        """The per-interval values of one metric."""
        return interval_values(self.readings).get(name, [])


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class ProtocolParser(Parser):
    def parse_line(self, line: str) -> list[Reading]:
        text = line.strip()
        for tag in ("SETTINGS ", "TIMING "):
            if text.startswith(tag):
                try:
                    parsed = json.loads(text[len(tag):])
                except ValueError:
                    return []
                if isinstance(parsed, dict):
                    if tag == "SETTINGS ":
                        self.reported = parsed
                    else:
                        self.timing = parsed
                return []
        kind, _, rest = text.partition(" ")
        if kind not in ("METRIC", "FINAL"):
            return []
        pairs = dict(p.split("=", 1) for p in rest.split() if "=" in p)
        interval_text = pairs.pop("interval", None)
        interval = int(interval_text) if interval_text and interval_text.isdigit() else None
        readings = []
        for key, raw in pairs.items():
            value = _number(raw)
            if value is not None and key not in ("items", "seconds"):
                readings.append(Reading(key, value, interval=interval, final=kind == "FINAL"))
        if kind == "METRIC" and interval is None:
            count = len({r.interval for r in self.readings if not r.final}) + 1
            readings = [Reading(r.name, r.value, interval=count) for r in readings]
        return readings


class RegexParser(Parser):
    def __init__(self, pattern: str, *, final_pattern: str | None = None) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)
        self.final_pattern = re.compile(final_pattern) if final_pattern else None
        self._count = 0

    @staticmethod
    def _groups(match: re.Match[str]) -> list[tuple[str, float]]:
        out = []
        for name, raw in match.groupdict().items():
            value = _number(raw) if raw is not None else None
            if value is not None:
                out.append((name, value))
        return out

    def parse_line(self, line: str) -> list[Reading]:
        if self.final_pattern is not None:
            match = self.final_pattern.search(line)
            if match:
                return [Reading(n, v, final=True) for n, v in self._groups(match)]
        match = self.pattern.search(line)
        if not match:
            return []
        self._count += 1
        return [Reading(n, v, interval=self._count) for n, v in self._groups(match)]


class JsonLineParser(Parser):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self._path = key.split(".")
        self._count = 0

    def parse_line(self, line: str) -> list[Reading]:
        text = line.strip()
        if not text.startswith("{"):
            return []
        try:
            node: Any = json.loads(text)
        except ValueError:
            return []
        for part in self._path:
            if not isinstance(node, dict) or part not in node:
                return []
            node = node[part]
        if isinstance(node, bool) or not isinstance(node, int | float):
            return []
        value = float(node)
        if not math.isfinite(value):
            return []
        self._count += 1
        return [Reading(self.key, value, interval=self._count)]


_NUM = r"(?P<throughput>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
PRESETS: dict[str, tuple[str, str | None]] = {
    # name: (interval pattern, final pattern)
    "tf_cnn_benchmarks": (r"^\s*\d+\s+images/sec: " + _NUM, r"total images/sec: " + _NUM),
    "wavenet": (r"^\s*step \d+.*samples/sec: " + _NUM,
                r"Average Throughput of whole run: Samples / sec: " + _NUM),
    "gnmt": (r"^\s*batch \d+.*sentences/sec: " + _NUM,
             r"Overall Throughput : " + _NUM + r" sentences per sec"),
}
PARSER_PRESETS = ("protocol", *PRESETS)


def make_parser(spec: ParserSpec) -> Parser:
    if spec.regex is not None:
        return RegexParser(spec.regex)
    if spec.json_key is not None:
        return JsonLineParser(spec.json_key)
    if spec.preset == "protocol":
        return ProtocolParser()
    if spec.preset in PRESETS:
        interval, final = PRESETS[spec.preset]
        return RegexParser(interval, final_pattern=final)
    raise ValueError(f"unknown parser preset {spec.preset!r}; known: {', '.join(PARSER_PRESETS)}")


def metric_names(spec: ParserSpec) -> set[str] | None:
    """The metrics a parser can yield (None: any name, as the protocol carries its own)."""
    if spec.regex is not None:
        return set(re.compile(spec.regex).groupindex)
    if spec.json_key is not None:
        return {spec.json_key}
    if spec.preset in PRESETS:
        return {"throughput"}
    return None
