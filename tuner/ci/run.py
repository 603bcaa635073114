"""One ci run (``tuner ci``, ``POST /studies/{name}/ci``), in phases:

1. ``previous``: the deployed settings and what they were measured in
   (``tuner.ci.previous``);
2. ``environment``: the environment now, and what changed (``tuner.ci.environment``);
3. ``check`` (environment unchanged): the deployed settings against both baselines in
   interleaved rounds until each comparison is decided (``tuner.ci.gate_race``); their
   speedup over the defaults now, and against then (their *edge*);
4. ``retune`` when the environment changed, the deployed settings lost their edge or lost
   against a baseline (``--retune auto``), or always/never as asked: a short study warm-
   started from the previous one (``tuner.ci.retune``), then the final race of the deployed
   settings against the baselines and the re-tune's best candidates;
5. ``verdict`` (``tuner.ci.verdict``), the record kept in the study's history (the study
   attribute ``ci_runs``), and the new settings written when the verdict recommends them.

Absolute throughputs of two runs are never compared: every figure is a ratio of runs paired
in the same rounds, and the edge compares two such ratios.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import optuna

from tuner.ci.environment import Change, changes, environment_of, workload_version
from tuner.ci.gate_race import DEPLOYED, GateRace, edge
from tuner.ci.previous import Previous, PreviousError, from_file, from_study, home_study
from tuner.ci.retune import (
    Retune,
    candidates,
    record_confirmation,
    retune_name,
    retune_space,
    run_retune,
)
from tuner.ci.settings_files import write_settings
from tuner.ci.verdict import FailOn, Verdict, exit_code, verdict_of
from tuner.execution.backend import Backend
from tuner.execution.forkserver import backend_for
from tuner.goal import Goal
from tuner.host import Fingerprint
from tuner.settings import Settings, child_base_environment
from tuner.space.baselines import ROLE_LABELS
from tuner.space.search_space import SearchSpace, config_key
from tuner.store.attributes import APPLIED, CI_RUNS, set_status
from tuner.store.gate import StudyGate
from tuner.study.events import RunEvents, Silent
from tuner.study.interleave import Entry
from tuner.study.measure import Measurer
from tuner.study.opening import open_study
from tuner.study.sequential import Looks

#: Records kept in a study's history (the oldest go first).
HISTORY_LIMIT = 50
Retuning = Literal["auto", "always", "never"]


@dataclass(frozen=True, kw_only=True)
class CiTarget:
    """What to check: the study fitted to this host, its storage, this environment's
    fingerprint, the study file's text, and a committed best.json (else the database)."""

    space: SearchSpace
    storage_url: str
    fingerprint: Fingerprint
    spec_text: str = ""
    previous_file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class CiOptions:
    retune: Retuning = "auto"
    fail_on: FailOn = "regressed"
    #: Where new settings go (None: not written).
    output_dir: Path | None = None
    #: The environment as measured (None: probed; tests give one to simulate an upgrade).
    environment: dict[str, str] | None = None


class CiRun:
    def __init__(self, target: CiTarget, *, settings: Settings, options: CiOptions,
                 backend: Backend | None = None, events: RunEvents | None = None) -> None:
        self.target = target
        self.space = target.space
        self.spec = target.space.spec
        self.settings = settings
        self.options = options
        self.backend = backend
        self.events: RunEvents = events or Silent()
        self.goal = Goal.of(self.spec.objective.direction)
        self.threshold = self.spec.ci.threshold
        self.home: optuna.Study | None = None

    # -- the phases -------------------------------------------------------------------

    def previous(self) -> Previous:
        self.home = home_study(self.target.storage_url, self.spec.name)
        if self.target.previous_file is not None:
            found = from_file(self.target.previous_file)
            if self.home is None:
                return found
            history = CI_RUNS.get(self.home)
            study = next((r.get("retuned") for r in reversed(history) if r.get("retuned")),
                         self.home.study_name)
            return replace(found, history=history, source_study=study)
        if self.home is None:
            raise PreviousError(f"no study named {self.spec.name!r} in the storage: there are "
                                "no deployed settings to check; run `tuner tune` first, or "
                                "give the committed settings with --previous best.json")
        return from_study(self.home)

    def environment(self) -> dict[str, str]:
        if self.options.environment is not None:
            return dict(self.options.environment)
        argv = self.spec.ci.version_command
        version = None
        if argv:
            env = child_base_environment(self.space.controlled_env,
                                         secrets=self.settings.secrets())
            version = workload_version(argv, env)
        return environment_of(self.target.fingerprint, version=version)

    def run(self) -> dict[str, Any]:
        """Every phase; returns the record kept in the history."""
        started = time.monotonic()
        previous = self.previous()
        self._check_knobs(previous)
        now = self.environment()
        changed = changes(previous.environment, now)
        self.events.note(f"deployed settings: {previous.source}")
        self.events.note("environment: " + ("; ".join(map(str, changed)) if changed
                                            else "unchanged since the previous result"))
        measurer = Measurer(self.space, self.settings,
                            self.backend or backend_for(self.spec.launcher))
        try:
            record = self._measure(previous, changed, measurer)
        finally:
            if self.backend is None:
                measurer.backend.close()
        record.update(environment=now, host_class=self.target.fingerprint.host_class,
                      seconds=time.monotonic() - started)
        self._keep(record, previous)
        return record

    # -- the measurement --------------------------------------------------------------

    def _measure(self, previous: Previous, changed: list[Change],
                 measurer: Measurer) -> dict[str, Any]:
        why = self._why_retune(changed)
        check = None
        if why is None:
            check = self._race(previous, [], measurer)
            why = self._why_retune_after(check, previous)
        retuned = None
        final = check
        if why is not None and self.options.retune != "never":
            self.events.note(f"re-tuning: {why}")
            retuned = self._retune(previous, measurer.backend)
            exclude = {config_key(e.applied) for e in self._baselines()}
            exclude.add(config_key(self._deployed_applied(previous)))
            picked = candidates(retuned, top=self.spec.ci.candidates, exclude=exclude)
            final = self._race(previous, [
                Entry(label=f"trial {t.number} of {retuned.study_name}",
                      applied=APPLIED.get(t) or {}, trial=t.number) for t in picked], measurer)
        assert final is not None
        if retuned is not None:
            record_confirmation(retuned, final.entries, level=final.level, rounds=final.rounds)
        return self._record(previous, changed, final, retuned=retuned, why=why)

    def _why_retune(self, changed: list[Change]) -> str | None:
        if self.options.retune == "always":
            return "asked for (--retune always)"
        if self.options.retune == "auto" and changed:
            return "the environment changed (" + "; ".join(map(str, changed)) + ")"
        return None

    def _why_retune_after(self, check: GateRace, previous: Previous) -> str | None:
        if self.options.retune != "auto":
            return None
        if any(c.standing == "loss" for c in check.judged):
            return "the deployed settings lost against a baseline"
        lost = edge(check.speedup_over(DEPLOYED, "defaults"), previous.speedup_then)
        if lost and lost["high"] < 1.0 and lost["ratio"] < 1.0 - self.threshold:
            return (f"the deployed settings lost their edge over the defaults "
                    f"({lost['ratio']:.2f}x of it [{lost['low']:.2f}, {lost['high']:.2f}])")
        return None

    def _baselines(self) -> list[Entry]:
        return [Entry(label=b.name, applied={**b.values, **self.space.fixed})
                for b in self.space.baselines]

    def _deployed_applied(self, previous: Previous) -> dict[str, Any]:
        return {**previous.knobs, **self.space.fixed}

    def _race(self, previous: Previous, rivals: list[Entry], measurer: Measurer) -> GateRace:
        deployed = Entry(label=DEPLOYED, applied=self._deployed_applied(previous))
        race = GateRace(deployed, [*self._baselines(), *rivals], threshold=self.threshold,
                        goal=self.goal, candidates=frozenset(r.label for r in rivals))
        ci = self.spec.ci
        looks = Looks.growing(ci.rounds, max(ci.rounds, ci.max_rounds))
        self.events.note(f"measuring the deployed settings against "
                         f"{', '.join(r.label for r in race.rivals)} in interleaved rounds "
                         f"(looks after {', '.join(map(str, looks.rounds))} rounds)")
        race.run(measurer, looks)
        return race

    def _retune(self, previous: Previous, backend: Backend) -> optuna.Study:
        """The re-tune runs on the gate's backend (one fork server, not two)."""
        run = len(previous.history) + 1
        name = retune_name(self.spec.name, run, home_exists=self.home is not None)
        source = None
        if previous.source_study is not None:
            source = home_study(self.target.storage_url, previous.source_study)
        how = Retune(space=retune_space(self.space, name), storage_url=self.target.storage_url,
                     fingerprint=self.target.fingerprint, spec_text=self.target.spec_text,
                     settings=self.settings, backend=backend)
        study = run_retune(how, deployed=self._deployed_applied(previous), source=source,
                           events=self.events)
        if self.home is None:
            self.home = study
        return study

    def _check_knobs(self, previous: Previous) -> None:
        unknown = sorted(set(previous.knobs) - set(self.space.knobs))
        if unknown:
            raise PreviousError(f"{previous.source}: knob(s) {', '.join(unknown)} of the "
                                f"deployed settings are not knobs of study "
                                f"{self.spec.name!r} on this tuner")

    # -- the record -------------------------------------------------------------------

    def _record(self, previous: Previous, changed: list[Change], race: GateRace, *,
                retuned: optuna.Study | None, why: str | None) -> dict[str, Any]:
        verdict = verdict_of(race.judged)
        now = race.speedup_over(DEPLOYED, "defaults")
        labels = ROLE_LABELS
        new_best = _new_best(race, verdict)
        record: dict[str, Any] = {
            "run": len(previous.history) + 1, "at": time.time(),
            "host": socket.gethostname(), "study": self.spec.name,
            "changed": [c.to_dict() for c in changed],
            "deployed": {"source": previous.source, "knobs": previous.knobs},
            "speedup_then": previous.speedup_then, "speedup_now": now,
            "edge": edge(now, previous.speedup_then),
            "comparisons": [{**c.to_dict(), "rival": labels.get(c.rival, c.rival)}
                            if not math.isnan(c.ratio) else
                            {"rival": labels.get(c.rival, c.rival), "standing": c.standing,
                             "candidate": c.candidate} for c in race.judged],
            "retuned": retuned.study_name if retuned is not None else None,
            "retune_reason": why if retuned is not None else None,
            "new_best": None, "verdict": verdict, "reason": _reason(verdict, race, labels),
            "threshold": self.threshold, "rounds": race.rounds,
            "level": race.level, "fail_on": self.options.fail_on,
            "exit_code": exit_code(verdict, self.options.fail_on), "written": None,
        }
        if new_best is not None:
            entry = next(e for e in race.entries if e.label == new_best)
            record["new_best"] = {
                "label": labels.get(new_best, new_best), "knobs": dict(entry.applied),
                **{k: v for k, v in (race.speedup_over(new_best, DEPLOYED) or {}).items()
                   if k in ("ratio", "low", "high", "rounds", "level")},
                "over_defaults": race.speedup_over(new_best, "defaults"),
                "over_vendor": race.speedup_over(new_best, "vendor")}
        return record

    def _keep(self, record: dict[str, Any], previous: Previous) -> None:
        """Write the new settings (when recommended) and add the record to the history."""
        new = record.get("new_best")
        if new is not None and self.options.output_dir is not None:
            written = write_settings(self.space, new["knobs"], directory=self.options.output_dir,
                                     facts={"study": self.spec.name, "ci_run": record["run"],
                                            "verdict": record["verdict"],
                                            "label": new["label"],
                                            "environment": record["environment"],
                                            "speedups": {"defaults": new.get("over_defaults"),
                                                         "vendor": new.get("over_vendor")},
                                            "confirmed": True})
            record["written"] = str(written)
        home = self.home
        if home is None:  # best.json, no study yet, no re-tune: a study to keep the history
            home = open_study(self.space, storage_url=self.target.storage_url,
                              fingerprint=self.target.fingerprint,
                              spec_text=self.target.spec_text)
            set_status(home, "done", "created by tuner ci to keep its history")
            self.home = home
        with StudyGate(self.target.storage_url, self.spec.name).hold():
            history = CI_RUNS.get(home)
            record["run"] = len(history) + 1
            CI_RUNS.put(home, [*history, record][-HISTORY_LIMIT:])


def _new_best(race: GateRace, verdict: Verdict) -> str | None:
    """The rival the deployed settings lose to most, when the verdict recommends moving."""
    if verdict not in ("improved", "regressed"):
        return None
    behind = [c for c in race.judged if c.standing in ("loss", "behind")]
    if not behind:
        return None
    return min(behind, key=lambda c: c.ratio).rival


def _reason(verdict: Verdict, race: GateRace, labels: dict[str, str]) -> str:
    t = race.threshold
    parts = [f"{labels.get(c.rival, c.rival)}: {c.ratio:.2f}x [{c.low:.2f}, {c.high:.2f}]"
             for c in race.judged if not math.isnan(c.ratio)]
    against = "; ".join(parts) or "no comparison could be made (runs failed)"
    if verdict == "regressed":
        return (f"the deployed settings lost by more than {t:.0%} ({against}; deployed over "
                f"each)")
    if verdict == "improved":
        return f"a new configuration is measurably better, by less than {t:.0%} ({against})"
    if verdict == "ok":
        return f"the deployed settings are within {t:.0%} of every rival ({against})"
    return (f"the rounds ran out before every comparison was decided against +/-{t:.0%} "
            f"({against})")
