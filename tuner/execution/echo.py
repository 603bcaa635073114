"""Proof that a value arrived: a command study's ``workload.echo`` pattern reads back, from
the program's own output, the settings it actually ran with (one named group per knob).

``EchoReader`` searches the pattern in every line of one child's output (lines are already
cut at ``read_loop.MAX_LINE`` characters), every match in the line; the first value seen for
a group wins: a program states its settings once, at start-up, and a later line that happens
to match (a log line about some other pool, say) cannot overwrite it. Once every group has
a value the reader stops searching.

``mismatches`` compares what was asked with what was read back: integers as integers, floats
as numbers, booleans as ``1``/``true``/``yes``/``on`` (``0``/``false``/``no``/``off``, any
case), everything else as text after stripping spaces. Which knobs to compare (a knob left
at the runtime's default asks for nothing) is the caller's decision.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["EchoReader", "matches", "mismatches"]

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


class EchoReader:
    """The values one child printed for the groups of ``pattern`` (first match wins)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        self.values: dict[str, str] = {}
        self._groups = set(self.pattern.groupindex)

    def feed(self, line: str) -> None:
        if len(self.values) == len(self._groups):
            return
        for match in self.pattern.finditer(line):
            for name, value in match.groupdict().items():
                if value is not None and name not in self.values:
                    self.values[name] = value
            if len(self.values) == len(self._groups):
                return


def matches(asked: Any, reported: str) -> bool:
    """Whether the read-back text ``reported`` says the program ran with ``asked``."""
    text = reported.strip()
    if isinstance(asked, bool):
        return text.lower() in (TRUE if asked else FALSE)
    if isinstance(asked, int):
        try:
            return int(text) == asked
        except ValueError:
            return False
    if isinstance(asked, float):
        try:
            return math.isclose(float(text), asked, rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    return text == str(asked).strip()


def mismatches(pattern: str, asked: Mapping[str, Any], echoed: Sequence[Mapping[str, str]],
               *, missing: bool = True) -> list[str]:
    """One line per knob of ``asked`` that a child's read-back contradicts (or, with
    ``missing``, never printed): ``threads: asked for 4, the program reported 2 (echo pattern
    '...')``. ``echoed`` holds each instance's read-back, in instance order."""
    out: list[str] = []
    several = len(echoed) > 1
    for index, values in enumerate(echoed):
        which = f"instance {index}: " if several else ""
        for name, value in asked.items():
            if name not in values:
                if missing:
                    out.append(f"{which}{name}: asked for {value}, the program never printed "
                               f"it (echo pattern '{pattern}' matched no {name!r} group in "
                               f"its output)")
            elif not matches(value, values[name]):
                out.append(f"{which}{name}: asked for {value}, the program reported "
                           f"{values[name].strip()} (echo pattern '{pattern}')")
    return out
