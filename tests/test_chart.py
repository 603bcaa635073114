"""The study chart: every stored string escaped, roles checked, reused trials marked as
such, the confirmation drawn with its intervals, and one "best" label: the answer."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

from tuner.goal import MAXIMIZE
from tuner.results.answer import Answer, Confirmed
from tuner.service.api.schemas import Trial
from tuner.service.dashboard import chart

SVG = "{http://www.w3.org/2000/svg}"
PAYLOAD = '"><script>alert(1)</script><svg onload="alert(2)'


def trial(number: int, value: float | None, **extra: Any) -> Trial:
    base: dict[str, Any] = {"number": number, "state": "complete", "role": "search",
                            "value": value, "params": {}, "applied": {},
                            "samples": [] if value is None else [value],
                            "intervals": [], "reason": ""}
    return Trial(**{**base, **extra})


def answer(**extra: Any) -> Answer:
    base: dict[str, Any] = {"trial": 0, "role": "defaults", "knobs": {}, "value": 124.1,
                            "low": 120.0, "high": 128.0, "unit": "images/s",
                            "metric": "throughput", "confirmed": True, "runs": 5}
    return Answer(**{**base, **extra})


def confirmed() -> list[Confirmed]:
    return [Confirmed(label="defaults", trial=0, mean=124.1, low=120.0, high=128.0, rounds=5,
                      best=True),
            Confirmed(label="trial 9", trial=9, mean=117.0, low=112.0, high=121.0, rounds=5,
                      best=False, speedup={"ratio": 0.94, "low": 0.9, "high": 0.98,
                                           "verdict": "loss"})]


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # well-formed XML, or this raises


def test_stored_strings_are_escaped_and_roles_checked() -> None:
    trials = [trial(0, 112.8, role="defaults"), trial(1, 120.0, role=PAYLOAD),
              trial(2, None, state="fail", reason=PAYLOAD),
              trial(3, None, state="pruned", reason=PAYLOAD, intervals=[100.0])]
    svg = chart.render(trials, goal=MAXIMIZE, unit=PAYLOAD, baselines={"defaults": 112.8},
                       answer=answer(role=PAYLOAD, unit=PAYLOAD),
                       confirmed=[Confirmed(label=PAYLOAD, trial=1, mean=120.0, low=119.0,
                                            high=121.0, rounds=3, best=True)])
    assert "<script" not in svg and 'onload="' not in svg
    root = parse(svg)
    assert not root.findall(f".//{SVG}script")
    roles = {e.get("data-role") for e in root.iter() if e.get("data-role")}
    assert roles <= {"defaults", "vendor", "search", "unknown"}
    assert any(e.get("data-label") == PAYLOAD for e in root.iter())  # kept, as inert text


def test_a_reused_trial_is_marked_and_not_a_new_measurement() -> None:
    trials = [trial(0, 100.0, role="defaults"), trial(1, 130.0), trial(2, 130.0, duplicate_of=1,
                                                                        samples=[])]
    root = parse(chart.render(trials, goal=MAXIMIZE, unit="items/s",
                              baselines={"defaults": 100.0}))
    reused = root.findall(".//*[@class='trial reused']")
    assert [(e.get("data-trial"), e.get("data-duplicate-of")) for e in reused] == [("2", "1")]
    single = {e.get("data-trial") for e in root.iter() if "single-run" in (e.get("class") or "")}
    assert single == {"0", "1"}
    title = reused[0].find(f"{SVG}title")
    assert title is not None and "reused the measurement of trial 1" in (title.text or "")
    best_line = root.find(f".//{SVG}polyline")
    assert best_line is not None and best_line.get("data-max") == "130.0"


def test_the_confirmation_intervals_and_the_answer_not_the_max_single_run() -> None:
    """The demo's case: trial 9's single runs were the highest, the confirmation found it
    0.94x the defaults; the label says the defaults' confirmed value."""
    trials = [trial(0, 112.8, role="defaults"), trial(1, 118.0, role="vendor"),
              trial(9, 137.4)]
    svg = chart.render(trials, goal=MAXIMIZE, unit="images/s",
                       baselines={"defaults": 112.8, "vendor": 118.0}, answer=answer(),
                       confirmed=confirmed())
    root = parse(svg)
    bars = {e.get("data-label"): e for e in root.iter() if e.get("class") == "confirmed"}
    assert set(bars) == {"defaults", "trial 9"}
    nine = bars["trial 9"]
    assert (nine.get("data-low"), nine.get("data-high"), nine.get("data-mean")) == (
        "112.0", "121.0", "117.0")
    assert (nine.get("data-ratio"), nine.get("data-verdict"), nine.get("data-best")) == (
        "0.94", "loss", "no")
    assert bars["defaults"].get("data-best") == "yes"
    label = next(e for e in root.iter() if e.get("class") == "answer")
    assert (label.get("data-trial"), label.get("data-value"), label.get("data-confirmed")) == (
        "0", "124.1", "yes")
    texts = " ".join(t.text or "" for t in label.iter(f"{SVG}text"))
    assert "best 124.1" in texts and "[120, 128]" in texts and "confirmed" in texts
    assert not re.search(r"best 137\.4", svg)


def test_an_unconfirmed_answer_says_so() -> None:
    trials = [trial(0, 100.0, role="defaults"), trial(1, 130.0)]
    svg = chart.render(trials, goal=MAXIMIZE, unit="", baselines={"defaults": 100.0},
                       answer=answer(trial=1, role="search", value=130.0, low=None, high=None,
                                     confirmed=False, runs=2))
    root = parse(svg)
    label = next(e for e in root.iter() if e.get("class") == "answer")
    assert label.get("data-confirmed") == "no" and label.get("data-low") is None
    assert "unconfirmed: single runs" in " ".join(t.text or "" for t in label.iter(f"{SVG}text"))
    assert "not confirmed yet" in svg
