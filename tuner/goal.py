"""The objective's direction, in one place: which of two values is better, the best of
many, the speed-up of one value over another (always > 1 when the first is better), the
bound within a relative slack of the best, and how the instances of one launch combine.
Everything that depends on maximize/minimize asks a ``Goal``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Goal:
    direction: Direction = "maximize"

    @classmethod
    def of(cls, direction: Any) -> Goal:
        """The goal of a direction: ``"maximize"``/``"minimize"``, or Optuna's
        ``StudyDirection`` (a study's ``direction``)."""
        name = str(getattr(direction, "name", direction)).lower()
        if name not in ("maximize", "minimize"):
            raise ValueError(f"unknown direction {direction!r}")
        return cls("maximize" if name == "maximize" else "minimize")

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def sign(self) -> float:
        """+1 when larger is better, -1 when smaller is: ``sign * value`` is to maximize."""
        return 1.0 if self.maximize else -1.0

    def better(self, value: float, than: float) -> bool:
        """``value`` is strictly better than ``than``."""
        return value > than if self.maximize else value < than

    def best(self, values: Iterable[float]) -> float:
        """The best of ``values`` (ValueError when there are none)."""
        return max(values) if self.maximize else min(values)

    def best_of(self, items: Iterable[T], key: Callable[[T], float]) -> T:
        """The item whose ``key`` is best."""
        return max(items, key=key) if self.maximize else min(items, key=key)

    def ranked(self, items: Iterable[T], key: Callable[[T], float]) -> list[T]:
        """``items`` from the best to the worst."""
        return sorted(items, key=key, reverse=self.maximize)

    def ratio(self, value: float, reference: float) -> float:
        """How many times better ``value`` is than ``reference`` (a speed-up: > 1 is
        better, whichever the direction)."""
        return value / reference if self.maximize else reference / value

    def log_ratio(self, value: float, reference: float) -> float:
        return math.log(self.ratio(value, reference))

    def bound(self, best: float, slack: float) -> float:
        """The value ``slack`` (relative) worse than ``best``."""
        return best * (1.0 - slack) if self.maximize else best * (1.0 + slack)

    def at_least_as_good(self, value: float, bound: float) -> bool:
        """``value`` is as good as ``bound`` or better."""
        return value >= bound if self.maximize else value <= bound

    def combine_instances(self, values: list[float]) -> float:
        """The metric of concurrent instances of one launch: their sum for a throughput
        (maximized), the worst instance's for a latency (minimized)."""
        return sum(values) if self.maximize else max(values)


MAXIMIZE = Goal("maximize")
MINIMIZE = Goal("minimize")
