"""Inert-knob screening: before the search, find knobs that have no measurable effect on this
host and workload, and fix them at their defaults so the search does not spend trials on them.

Stock TensorFlow runs oneDNN on its own thread pool, so the OpenMP knobs (OMP_NUM_THREADS,
KMP_AFFINITY, KMP_BLOCKTIME, KMP_HW_SUBSET) usually do nothing; an OpenMP build is another
matter, which is why this is measured and not assumed. Each screened knob is set, alone, to
each probe value of its domain (``probe_values``: its non-default choices, both ends of a
range); those probes and the defaults run in interleaved rounds, and each probe's paired
speedup over the defaults gets a 95% interval. A knob matters if any probe differs clearly
(the interval excludes 1 and the ratio is beyond the noise floor), however small the
difference. It is inert only if every probe's interval lies inside +/- the equivalence
margin (1.5 times the noise floor, at least 5%): "no measurable effect" must be measured, so
a wide interval keeps the knob in the search rather than fixing it on too little evidence.
The rounds are sequential: 4 for every probe, then 2 more at a time (up to 10) for the knobs
still undecided, so a clear case costs 4 rounds and a close one gets the precision it needs.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import optuna

from tuner import stats
from tuner.goal import Goal
from tuner.knobs import UNSET, IntDomain, KnobContext
from tuner.space.search_space import Dimension, SearchSpace
from tuner.store.attributes import SCREENING
from tuner.store.database import claim
from tuner.store.gate import StudyGate
from tuner.store.values import Screening
from tuner.study.events import Say, ignore
from tuner.study.interleave import Entry, paired, run_rounds
from tuner.study.measure import Measurer
from tuner.study.trial import study_floor

logger = logging.getLogger(__name__)

ROUNDS = 4  # first rounds, for every probe
MORE_ROUNDS = 2  # then this many more at a time, only for knobs still undecided,
MAX_ROUNDS = 10  # up to this many in all
SCREENED_FAMILIES = ("openmp",)


def candidates(space: SearchSpace) -> list[Dimension]:
    choice = space.spec.screening
    if choice == "off" or space.spec.sampler.name == "grid":
        return []
    if choice == "auto":
        return [d for d in space.dims if d.knob.family in SCREENED_FAMILIES]
    return [d for d in space.dims if d.name in choice]


MAX_PROBES = 4


def probe_values(dim: Dimension, ctx: KnobContext) -> list[Any]:
    """Values that would reveal an effect: every non-default choice of a categorical domain
    (at most ``MAX_PROBES``, spread over it), both ends of an integer range."""
    default = dim.knob.default_value(ctx)
    domain = dim.domain
    if isinstance(domain, IntDomain):
        return [v for v in dict.fromkeys((domain.low, domain.high)) if v != default]
    others = [c for c in domain.choices if c != default and c != UNSET]
    if len(others) > MAX_PROBES:
        step = (len(others) - 1) / (MAX_PROBES - 1)
        others = [others[round(i * step)] for i in range(MAX_PROBES)]
    return others


def margin(floor: float) -> float:
    return max(0.05, 1.5 * floor)


def screen(study: optuna.Study, measurer: Measurer, *, gate: StudyGate, rounds: int = ROUNDS,
           say: Say = ignore) -> None:
    """Screen the space's candidate knobs, once per study, by the one worker that claims the
    job; the result is the study attribute ``screening``, which trials read as they start
    (``tuner.study.trial.inert_knobs``)."""
    if SCREENING.present(study):
        return
    dims = candidates(measurer.space)
    if not dims:
        SCREENING.put(study, Screening())
        return
    if not claim(study, gate, "screening", socket.gethostname(),
                 timeout=measurer.settings.claim_timeout):
        return
    SCREENING.put(study, Screening.from_dict(_run(study, measurer, dims, rounds, say)))


def _verdict(speedup: stats.Speedup, limit: float) -> str:
    if speedup.verdict != "no measurable difference":
        return "matters"  # a clear effect beyond the noise, however small
    if speedup.low >= 1 - limit and speedup.high <= 1 + limit:
        return "inert"
    return "inconclusive"


def _run(study: optuna.Study, measurer: Measurer, dims: list[Dimension], rounds: int,
         say: Say) -> dict[str, Any]:
    space = measurer.space
    floor = study_floor(study)
    limit = margin(floor)
    goal = Goal.of(space.spec.objective.direction)
    reference = Entry(label="defaults", applied=dict(space.fixed))
    probes = {d.name: probe_values(d, space.ctx) for d in dims}
    entries = {name: [Entry(label=f"{name}={value}", applied={**space.fixed, name: value})
                      for value in values] for name, values in probes.items()}
    say(f"screening {', '.join(probes)} for a measurable effect: "
        f"{1 + sum(map(len, entries.values()))} configurations in interleaved rounds")
    undecided = set(probes)
    verdicts: dict[str, list[str]] = {}
    done = 0
    step = rounds
    while undecided and done < MAX_ROUNDS:
        active = [reference] + [e for name in sorted(undecided) for e in entries[name]]
        run_rounds(measurer, active, step)
        done += step
        for group in entries.values():  # decided probes sat these rounds out
            for entry in group:
                entry.values += [None] * (len(reference.values) - len(entry.values))
        for name in sorted(undecided):
            verdicts[name] = [_verdict(s, limit) if s else "failed"
                              for s in (_speedup(e, reference, floor, goal)
                                        for e in entries[name])]
            if "matters" in verdicts[name] or all(v == "inert" for v in verdicts[name]):
                undecided.discard(name)
        step = MORE_ROUNDS
    results: dict[str, Any] = {}
    for name, group in entries.items():
        speedups = {}
        lines = []
        for value, entry in zip(probes[name], group, strict=True):
            speedup = _speedup(entry, reference, floor, goal)
            if speedup is None:
                lines.append(f"{name}={value}: runs failed ("
                             + "; ".join(sorted({r for r in entry.reasons if r})) + ")")
                continue
            speedups[str(value)] = speedup.to_dict()
            lines.append(f"{name}={value} vs unset: {speedup} over {speedup.rounds} "
                         "interleaved rounds")
        inert = bool(verdicts[name]) and all(v == "inert" for v in verdicts[name])
        if inert:
            conclusion = f"inside +/-{limit:.1%}: inert, fixed at unset"
        elif "matters" in verdicts[name]:
            conclusion = "it matters, kept"
        else:
            conclusion = f"not shown to be inside +/-{limit:.1%} in {done} rounds, kept"
        evidence = f"{'; '.join(lines)}: {conclusion}"
        results[name] = {"probes": probes[name], "speedups": speedups, "margin": limit,
                         "rounds": done, "inert": inert, "evidence": evidence}
        say(f"  {evidence}")
    return results


def _speedup(entry: Entry, reference: Entry, floor: float,
             goal: Goal) -> stats.Speedup | None:
    probe, ref = paired(entry, reference)
    if len(probe) < 2:
        return None
    return stats.paired_speedup(probe, ref, floor=floor, goal=goal)
