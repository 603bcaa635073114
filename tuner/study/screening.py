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
The intervals are those of ``tuner.study.sequential``: examined only at those looks, at the
level the looks and the probes spend of the 5% error, so stopping early at a look does not
make noise pass for an effect (or for its absence).

Before any round, a knob that only a runtime library reads (its ``needs_library``: KMP_*
need Intel's or LLVM's OpenMP) is judged from what the baselines' processes loaded (the
trial attribute ``loaded``): when every finished baseline whose libraries are known mapped
none of those libraries, the knob is inert by construction, fixed at unset with 0 rounds
(``basis: libraries``). It is measured as above when a baseline mapped one, when no
baseline's libraries are known, when a baseline has not finished, or when a knob in the
space changes which libraries load (``changes_libraries``: the OpenMP runtime, the
allocator), since a trial may then load what the baselines did not. In that last case,
when the defaults' own process maps none of the knob's libraries, a probe against the
defaults could only show it doing nothing under the wrong runtime: the knob is kept for
the search, unscreened, with that evidence and 0 rounds.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from tuner import stats
from tuner.execution.libraries import LABELS, summary_line
from tuner.goal import Goal
from tuner.knobs import UNSET, IntDomain, KnobContext
from tuner.space.baselines import ROLE_LABELS
from tuner.space.search_space import Dimension, SearchSpace
from tuner.store.attributes import LOADED, ROLE, SCREENING
from tuner.store.database import claim, live_trials
from tuner.store.gate import StudyGate
from tuner.store.values import BY_LIBRARIES, MEASURED, Loaded, Screening
from tuner.study.events import Say, ignore
from tuner.study.interleave import Entry, paired, run_rounds
from tuner.study.measure import Measurer
from tuner.study.sequential import Looks, run_looks
from tuner.study.trial import study_floor

logger = logging.getLogger(__name__)

ROUNDS = 4  # first rounds, for every probe
MORE_ROUNDS = 2  # then this many more at a time, only for knobs still undecided,
MAX_ROUNDS = 10  # up to this many in all
#: Families screened on `auto`: the OpenMP knobs (often inert under TensorFlow) and the
#: system knobs (each one's effect is measured with an interval before the search, and an
#: inert one is left as the machine has it: a change of the whole machine must earn its
#: place).
SCREENED_FAMILIES = ("openmp", "system")


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
    space = measurer.space
    loads = baseline_loads(study, space)
    changers = [d.name for d in space.dims if d.knob.changes_libraries]
    decided: dict[str, dict[str, Any]] = {}
    for dim in dims:
        entry, why = by_libraries(dim.name, dim.knob.needs_library, loads, changers)
        if entry is not None:
            decided[dim.name] = entry
            say(f"  {dim.name}: {entry['evidence']}")
        elif why:
            say(f"  {dim.name}: {why}")
    measured = [d for d in dims if d.name not in decided]
    if measured:
        decided.update(_run(study, measurer, measured, rounds, say))
    results = {d.name: decided[d.name] for d in dims}
    SCREENING.put(study, Screening.from_dict(results))


@dataclass(frozen=True, kw_only=True)
class BaselineLoad:
    """What one finished baseline trial's process loaded."""

    role: str
    trial: int
    loaded: Loaded

    @property
    def line(self) -> str:
        """``framework defaults, trial 0: openblas, allocator default; build: ...``"""
        return (f"{ROLE_LABELS.get(self.role, self.role)}, trial {self.trial}: "
                f"{summary_line(self.loaded.libraries, self.loaded.build)}")


def baseline_loads(study: optuna.Study, space: SearchSpace) -> list[BaselineLoad] | None:
    """What each completed baseline trial loaded (a trial that stored nothing: unknown);
    None while a baseline is still waiting or running (what it loads is not known yet)."""
    names = {b.name for b in space.baselines}
    out = []
    for trial in live_trials(study):
        role = ROLE.get(trial)
        if role not in names:
            continue
        if trial.state in (TrialState.WAITING, TrialState.RUNNING):
            return None
        if trial.state == TrialState.COMPLETE:
            out.append(BaselineLoad(role=role, trial=trial.number,
                                    loaded=LOADED.get(trial) or Loaded()))
    return out


def _runtimes(needs: Sequence[str]) -> str:
    labels = [LABELS.get(n, n) for n in needs]
    said = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"
    return f"{said} runtime ({'/'.join(needs)})"


def by_libraries(name: str, needs: Sequence[str], loads: Sequence[BaselineLoad] | None,
                 changers: Sequence[str]) -> tuple[dict[str, Any] | None, str]:
    """The screening entry of a knob inert by construction (see the module), or None and
    why it is measured instead ("" for a knob no particular library reads)."""
    if not needs:
        return None, ""
    if changers:
        return _kept_for_the_search(needs, loads, changers)
    if loads is None:
        return None, "a baseline has not finished, so what it loads is unknown: measured"
    known = [load for load in loads if load.loaded.libraries is not None]
    if not known:
        return None, "no baseline's loaded libraries are known: measured"
    for load in known:
        found = [n for n in needs if n in (load.loaded.libraries or ())]
        if found:
            return None, (f"{'/'.join(found)} mapped in the "
                          f"{ROLE_LABELS.get(load.role, load.role)}' process: measured")
    evidence = (f"no {_runtimes(needs)} mapped in the baselines' processes ("
                + " | ".join(load.line for load in loads)
                + f"): inert by construction, fixed at {UNSET}, 0 rounds")
    return _by_libraries_entry(inert=True, evidence=evidence, needs=needs, loads=loads), ""


def _by_libraries_entry(*, inert: bool, evidence: str, needs: Sequence[str],
                        loads: Sequence[BaselineLoad]) -> dict[str, Any]:
    """A screening entry decided from the libraries ``loads`` mapped: no probe, 0 rounds."""
    return {"probes": [], "speedups": {}, "margin": None, "rounds": 0, "inert": inert,
            "evidence": evidence, "basis": BY_LIBRARIES, "needs": list(needs),
            "loaded": {load.role: {"trial": load.trial, **load.loaded.to_dict()}
                       for load in loads}}


def _kept_for_the_search(needs: Sequence[str], loads: Sequence[BaselineLoad] | None,
                         changers: Sequence[str]) -> tuple[dict[str, Any] | None, str]:
    """With a knob in the space that changes what loads (``changers``): a probe runs alone
    against the defaults, so when the defaults' process maps none of the knob's libraries,
    screening would only show the knob doing nothing under the runtime the defaults load
    (KMP_BLOCKTIME under GNU's libgomp), while it may matter under the one a changer loads.
    Such a knob is kept for the search, unscreened, 0 rounds; otherwise it is measured."""
    defaults = next((load for load in loads or () if load.role == "defaults"
                     and load.loaded.libraries is not None), None)
    if defaults is None or set(needs) & set(defaults.loaded.libraries or ()):
        return None, (f"{', '.join(changers)} in the space may load libraries the baselines "
                      f"did not: measured")
    evidence = (f"no {_runtimes(needs)} mapped in the framework defaults' process "
                f"({defaults.line}); only {', '.join(changers)} can load one, which a probe "
                f"against the defaults does not: kept for the search, unscreened, 0 rounds")
    return _by_libraries_entry(inert=False, evidence=evidence, needs=needs,
                               loads=[defaults]), ""


def _verdict(speedup: stats.Speedup, limit: float) -> str:
    if speedup.verdict != "no measurable difference":
        return "matters"  # a clear effect beyond the noise, however small
    if speedup.low >= 1 - limit and speedup.high <= 1 + limit:
        return "inert"
    return "inconclusive"


def _held(default: Any, *, system: bool) -> str:
    """A system knob's defaults are the machine's current value; every other knob's, unset."""
    return f"{default} (as the machine has it)" if system and default != UNSET else "unset"


def _run(study: optuna.Study, measurer: Measurer, dims: list[Dimension], rounds: int,
         say: Say) -> dict[str, Any]:
    space = measurer.space
    floor = study_floor(study)
    limit = margin(floor)
    goal = Goal.of(space.spec.objective.direction)
    reference = Entry(label="defaults", applied=dict(space.fixed))
    probes = {d.name: probe_values(d, space.ctx) for d in dims}
    # what "the defaults" hold for each: unset, or a system knob's value on the machine now
    held = {d.name: _held(d.knob.default_value(space.ctx), system=d.knob.family == "system")
            for d in dims}
    entries = {name: [Entry(label=f"{name}={value}", applied={**space.fixed, name: value})
                      for value in values] for name, values in probes.items()}
    say(f"screening {', '.join(probes)} for a measurable effect: "
        f"{1 + sum(map(len, entries.values()))} configurations in interleaved rounds")
    undecided = set(probes)
    verdicts: dict[str, list[str]] = {}
    looks = Looks.stepping(rounds, MORE_ROUNDS, max(rounds, MAX_ROUNDS))

    def add_rounds(count: int) -> None:
        active = [reference] + [e for name in sorted(undecided) for e in entries[name]]
        run_rounds(measurer, active, count)
        for group in entries.values():  # decided probes sat these rounds out
            for entry in group:
                entry.values += [None] * (len(reference.values) - len(entry.values))

    def decided(level: float) -> bool:
        for name in sorted(undecided):
            verdicts[name] = [_verdict(s, limit) if s else "failed"
                              for s in (_speedup(e, reference, floor, goal, level)
                                        for e in entries[name])]
            if "matters" in verdicts[name] or all(v == "inert" for v in verdicts[name]):
                undecided.discard(name)
        return not undecided

    stopped = run_looks(looks, add_rounds=add_rounds, settled=decided,
                        comparisons=sum(map(len, entries.values())))
    done = stopped.rounds
    results: dict[str, Any] = {}
    for name, group in entries.items():
        speedups = {}
        lines = []
        for value, entry in zip(probes[name], group, strict=True):
            speedup = _speedup(entry, reference, floor, goal, stopped.level)
            if speedup is None:
                lines.append(f"{name}={value}: runs failed ("
                             + "; ".join(sorted({r for r in entry.reasons if r})) + ")")
                continue
            speedups[str(value)] = speedup.to_dict()
            lines.append(f"{name}={value} vs {held[name]}: {speedup} over "
                         f"{speedup.rounds} interleaved rounds")
        inert = bool(verdicts[name]) and all(v == "inert" for v in verdicts[name])
        if inert:
            conclusion = f"inside +/-{limit:.1%}: inert, fixed at {held[name]}"
        elif "matters" in verdicts[name]:
            conclusion = "it matters, kept"
        else:
            conclusion = f"not shown to be inside +/-{limit:.1%} in {done} rounds, kept"
        evidence = f"{'; '.join(lines)}: {conclusion}"
        results[name] = {"probes": probes[name], "speedups": speedups, "margin": limit,
                         "rounds": done, "inert": inert, "evidence": evidence,
                         "basis": MEASURED}
        say(f"  {evidence}")
    return results


def _speedup(entry: Entry, reference: Entry, floor: float, goal: Goal,
             level: float) -> stats.Speedup | None:
    probe, ref = paired(entry, reference)
    if len(probe) < 2:
        return None
    return stats.paired_speedup(probe, ref, floor=floor, goal=goal, level=level)
