"""Sequential comparisons that stay valid however the rounds are stopped.

Confirmation and screening add interleaved rounds until their intervals are precise enough
(or the question is decided), and stop early when they are. Looking at a 95% interval after
every round and stopping once it looks good would make it a 95% interval no longer: each
look is another chance for noise to pass for a result. So the rounds are examined only at
fixed **looks** (``Looks``: e.g. after 4, 6, 9 and 12 rounds), and the 5% error is *spent*
over them: the interval at look k is taken at level ``1 - alpha * w_k / m``, where ``w_k``
is the look's share of the rounds of all looks (later looks, having more rounds, get more
of the error: early intervals are wide anyway) and ``m`` the number of intervals compared
at once (Bonferroni). By the union bound, every interval of every look then holds the true
ratio together with probability at least 1 - alpha, whatever rule decides when to stop;
``tests/test_sequential.py`` checks the coverage by simulation.

The price, against a fixed-sample interval at the same number of rounds, is a wider
interval (the t quantile at a smaller alpha); the gain is stopping at 4 rounds when the
answer is clear and going on to 12 when it is close.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tuner import stats

ALPHA = 0.05
#: The target half-width of a confirmation's intervals when the study file says ``auto``:
#: the machine's noise floor, but no tighter than this.
PRECISION_FLOOR = 0.02


@dataclass(frozen=True)
class Looks:
    """The rounds (cumulative) after which intervals are examined, and the error spent."""

    rounds: tuple[int, ...]
    alpha: float = ALPHA

    @classmethod
    def growing(cls, first: int, most: int, factor: float = 1.5) -> Looks:
        """``first`` rounds, then about ``factor`` times as many at each look, to ``most``."""
        looks = [first]
        while looks[-1] < most:
            looks.append(min(most, max(looks[-1] + 1, math.ceil(looks[-1] * factor))))
        return cls(tuple(looks))

    @classmethod
    def stepping(cls, first: int, step: int, most: int) -> Looks:
        """``first`` rounds, then ``step`` more at each look, to ``most``."""
        return cls(tuple(range(first, most, step)) + (most,) if first < most else (first,))

    def level(self, look: int, comparisons: int = 1) -> float:
        """The level of each of ``comparisons`` intervals at look number ``look`` (0-based)."""
        weight = self.rounds[look] / sum(self.rounds)
        return 1.0 - self.alpha * weight / max(1, comparisons)


def half_width(speedup: stats.Speedup | dict[str, object]) -> float:
    """An interval's relative half-width: how far (as a fraction of the ratio) its wider
    end lies from the ratio (the log-scale half-width, exponentiated)."""
    if isinstance(speedup, stats.Speedup):
        ratio, low, high = speedup.ratio, speedup.low, speedup.high
    else:
        ratio, low, high = (float(str(speedup[k])) for k in ("ratio", "low", "high"))
    return max(high / ratio - 1.0, ratio / low - 1.0 if low > 0 else math.inf)


def target_precision(setting: float | str, floor: float) -> float:
    """The half-width a comparison aims at: ``setting``, or for ``auto`` the noise floor
    (no tighter than ``PRECISION_FLOOR``)."""
    if setting == "auto":
        return max(floor, PRECISION_FLOOR)
    return float(setting)


@dataclass(frozen=True)
class Stopped:
    """Where a sequential comparison stopped: rounds done, the level of its last look, and
    whether its rule stopped it (False: the round budget ran out first)."""

    rounds: int
    level: float
    settled: bool
    look: int


def run_looks(looks: Looks, *, add_rounds: Callable[[int], None],
              settled: Callable[[float], bool], comparisons: int) -> Stopped:
    """Add rounds up to each look in turn (``add_rounds(n)``); at each, ``settled(level)``
    says whether to stop, ``level`` being the spent level of each of the ``comparisons``
    intervals at that look."""
    done = 0
    level = looks.level(0, comparisons)
    for index, total in enumerate(looks.rounds):
        add_rounds(total - done)
        done = total
        level = looks.level(index, comparisons)
        if settled(level):
            return Stopped(rounds=done, level=level, settled=True, look=index)
    return Stopped(rounds=done, level=level, settled=False, look=len(looks.rounds) - 1)
