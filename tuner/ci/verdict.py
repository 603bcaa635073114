"""The gate's rules: how one comparison of the deployed settings stands against the
threshold, when the comparisons are decided, the verdict, and its exit status.

Each comparison is the deployed settings' paired speedup over a rival (a baseline, or a
candidate of the re-tune) with its simultaneous interval. Against a threshold ``t``:

* ``loss``: the interval lies below 1 and the ratio is below ``1 - t``: the deployed
  settings measurably lost, by more than the threshold (the rule tuner calls a loss
  everywhere, with the threshold as the floor);
* ``fine``: the interval lies above ``1 - t``: whatever the truth, the deployed settings
  are not worse than the rival by more than the threshold;
* ``behind``: fine, but the interval lies below 1: measurably worse, within the threshold;
* ``open``: none of these yet.

A comparison is decided when it is a loss or fine (a re-tune candidate that looks better by
more than a quarter of the threshold but not yet measurably keeps the rounds going: an
``improved`` must be measured). The verdict:

* ``regressed`` as soon as one comparison is a loss;
* otherwise, once every comparison is decided: ``improved`` when a new candidate is
  measurably better (the deployed settings are behind it), else ``ok``;
* otherwise (the rounds ran out first) ``inconclusive``, never ``ok``.

A deployed setting that truly lost 2t is called a loss unless its interval still reaches 1
when the rounds run out; one that truly lost nothing is called a loss only when its
interval excludes the truth, which the sequential levels bound at 5% for all comparisons
together (``tuner.study.sequential``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Standing = Literal["loss", "behind", "fine", "open"]
Verdict = Literal["ok", "improved", "regressed", "inconclusive"]
FailOn = Literal["regressed", "changed", "any"]

VERDICTS: tuple[Verdict, ...] = ("ok", "improved", "regressed", "inconclusive")
#: The exit status of each verdict with ``--fail-on regressed`` (the default).
EXIT_CODES: dict[Verdict, int] = {"ok": 0, "improved": 0, "regressed": 1, "inconclusive": 3}
#: The exit status of an error (bad input, nothing to compare with).
ERROR_EXIT = 2


def standing(ratio: float, low: float, high: float, threshold: float) -> Standing:
    """How the deployed settings stand against a rival (``ratio``: deployed over rival)."""
    if high < 1.0 and ratio < 1.0 - threshold:
        return "loss"
    if low > 1.0 - threshold:
        return "behind" if high < 1.0 else "fine"
    return "open"




@dataclass(frozen=True)
class Comparison:
    """The deployed settings against one rival, as the gate judged it."""

    rival: str
    ratio: float
    low: float
    high: float
    standing: Standing
    #: The rival is a candidate of the re-tune (not a baseline).
    candidate: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"rival": self.rival, "ratio": self.ratio, "low": self.low, "high": self.high,
                "standing": self.standing, "candidate": self.candidate}


def decided(comparisons: Iterable[Comparison], threshold: float) -> bool:
    """True once more rounds would not change the verdict enough to pay for them: a loss;
    or nothing open and no re-tune candidate that looks better by more than a quarter of
    the threshold without being measurably better yet (``improved`` needs that measured;
    a smaller gain is not worth the rounds)."""
    items = list(comparisons)
    if any(c.standing == "loss" for c in items):
        return True
    return all(c.standing != "open" and not _gain_pending(c, threshold) for c in items)


def _gain_pending(comparison: Comparison, threshold: float) -> bool:
    return (comparison.candidate and comparison.standing == "fine"
            and comparison.ratio < 1.0 - threshold / 4)


def verdict_of(comparisons: Iterable[Comparison]) -> Verdict:
    items = list(comparisons)
    if not items:
        return "inconclusive"
    if any(c.standing == "loss" for c in items):
        return "regressed"
    if any(c.standing == "open" for c in items):
        return "inconclusive"
    if any(c.candidate and c.standing == "behind" for c in items):
        return "improved"
    return "ok"


def exit_code(verdict: Verdict, fail_on: FailOn = "regressed") -> int:
    """``--fail-on regressed``: 1 on regressed, 3 on inconclusive, else 0; ``changed``: 1
    on improved too (the settings should change: hold the merge until they do); ``any``:
    1 on anything but ok (3 stays 3)."""
    if verdict == "improved" and fail_on in ("changed", "any"):
        return 1
    return EXIT_CODES[verdict]
