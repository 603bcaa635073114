"""Inert-knob screening: before the search, find knobs that have no measurable effect on this
host and workload, and fix them at their defaults so the search does not spend trials on them.

Stock TensorFlow runs oneDNN on its own thread pool, so the OpenMP knobs (OMP_NUM_THREADS,
KMP_AFFINITY, KMP_BLOCKTIME, KMP_HW_SUBSET) usually do nothing; an OpenMP build is another
matter, which is why this is measured and not assumed. Each screened knob is set, alone, to
the value of its domain farthest from its default; those probes and the defaults run in
interleaved rounds, and each probe's paired speedup over the defaults gets a 95% interval. A
knob matters if any probe differs clearly (the interval excludes 1 and the ratio is beyond
the noise floor), however small the difference. It is inert only if every probe's interval
lies inside +/- the equivalence margin (1.5 times the noise floor, at least 5%): "no
measurable effect" must be measured, so a wide interval keeps the knob in the search rather
than fixing it on too little evidence.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import optuna

from tuner import stats
from tuner.interleave import Entry, paired, run_rounds
from tuner.knobs import UNSET, IntDomain, KnobContext
from tuner.measure import Measurer
from tuner.objective import study_floor
from tuner.space import Dimension, SearchSpace
from tuner.store import claim

logger = logging.getLogger(__name__)

ROUNDS = 4
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


def screen(study: optuna.Study, measurer: Measurer, *, gate: Any, rounds: int = ROUNDS,
           say: Any = None) -> None:
    """Screen the space's candidate knobs, once per study, by the one worker that claims the
    job; the result is the study attribute ``screening``, which trials read as they start
    (``tuner.objective.inert_knobs``)."""
    if "screening" in study.user_attrs:
        return
    dims = candidates(measurer.space)
    if not dims:
        study.set_user_attr("screening", {})
        return
    if not claim(study, gate, "screening", socket.gethostname()):
        return
    study.set_user_attr("screening", _run(study, measurer, dims, rounds, say))


def _run(study: optuna.Study, measurer: Measurer, dims: list[Dimension], rounds: int,
         say: Any) -> dict[str, Any]:
    space = measurer.space
    floor = study_floor(study)
    limit = margin(floor)
    reference = Entry(label="defaults", applied=dict(space.fixed))
    probes = {d.name: probe_values(d, space.ctx) for d in dims}
    entries = [reference] + [Entry(label=f"{name}={value}", applied={**space.fixed, name: value})
                             for name, values in probes.items() for value in values]
    if say:
        say(f"screening {', '.join(probes)} for a measurable effect: {rounds} interleaved "
            f"rounds of {len(entries)} runs")
    run_rounds(measurer, entries, rounds)
    maximize = space.spec.objective.direction == "maximize"
    by_label = {e.label: e for e in entries}
    results: dict[str, Any] = {}
    for name, values in probes.items():
        lines: list[str] = []
        speedups: dict[str, Any] = {}
        verdicts: list[str] = []
        for value in values:
            entry = by_label[f"{name}={value}"]
            probe, ref = paired(entry, reference)
            if len(probe) < 2:
                verdicts.append("failed")
                lines.append(f"{name}={value}: runs failed ("
                             + "; ".join(sorted({r for r in entry.reasons if r})) + ")")
                continue
            speedup = stats.paired_speedup(probe, ref, floor=floor, maximize=maximize)
            speedups[str(value)] = speedup.to_dict()
            if speedup.verdict != "no measurable difference":
                verdicts.append("matters")  # a clear effect beyond the noise, however small
            elif speedup.low >= 1 - limit and speedup.high <= 1 + limit:
                verdicts.append("inert")
            else:
                verdicts.append("inconclusive")
            lines.append(f"{name}={value} vs unset: {speedup}")
        inert = bool(verdicts) and all(v == "inert" for v in verdicts)
        if inert:
            conclusion = f"inside +/-{limit:.1%}: inert, fixed at unset"
        elif "matters" in verdicts:
            conclusion = "it matters, kept"
        else:
            conclusion = f"not shown to be inside +/-{limit:.1%}, kept"
        evidence = f"{'; '.join(lines)} over {rounds} interleaved rounds: {conclusion}"
        results[name] = {"probes": values, "speedups": speedups, "margin": limit,
                         "rounds": rounds, "inert": inert, "evidence": evidence}
        if say:
            say(f"  {evidence}")
    return results
