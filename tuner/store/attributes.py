"""Every attribute tuner keeps in Optuna's study database, defined once: its key, where it
lives (a study's or a trial's user attributes, or a trial's system attributes), what it
holds, who writes it and what it means. This is the only module that spells a key
(``tests/test_attribute_keys.py`` checks it); everything else asks the objects below, as
Optuna's ``_SYSTEM_ATTR_*`` constants and MLOS ``storage/base_trial_data.py`` do.

The stored format is the one tuner always wrote: generic Optuna tools and optuna-dashboard
see the same attributes. A value whose text is over 1,000 characters is stored in parts
(``tuner.store.records``); the attributes marked *parts* below are read and written
through that, so their readers never see the parts.

How to use them (``study`` is an ``optuna.Study``, ``trial`` a ``Trial`` or a
``FrozenTrial``; every reader also takes the ``user_attrs`` mapping itself, to read many
attributes from one copy)::

    NOISE.get(study)                    # -> Noise | None: the typed value, or the default
    NOISE.put(study, noise)             # writes noise.to_dict() (in parts when large)
    "noise" in ...  ->  NOISE.present(study)
    ROLE.get(trial), ROLE.entry("defaults")   # {"role": "defaults"} for create_trial
    RUNS.put(trial, [Run.from_dict(outcome.to_dict()), ...])
    CLAIMS.get(study, "screening"), CLAIMS.put(study, "screening", claim)
    ABANDONED.put(study, 7, "why"), ABANDONED.items(study)   # {"7": "why"}
    SAMPLER_PARAMS.get(frozen_trial), SAMPLER_PARAMS.key      # a system attribute
    status_of(study).state, set_status(study, "running"), put_spec(study, spec, text)

Study user attributes (key — holds — written by — meaning):

* ``spec`` — object, parts — ``service.api.routes.studies.queue``, ``study.opening`` — the
  validated study, only what differs from the defaults (``spec_of`` fills them in)
* ``spec_text`` — text, parts — the same — the study file it came from
* ``space`` — object, parts — ``study.opening`` — the resolved search space (``size``, ...)
* ``space_key`` — text — ``study.opening`` — identity of workload, objective and space
* ``fingerprint`` — object, parts — ``study.opening`` — the host that measures the study
* ``host_class`` — text — ``study.opening`` — the kind of machine; workers of another skip it
* ``unit`` — text — ``queue``, ``study.opening`` — the metric's unit
* ``status``, ``status_reason``, ``status_at`` — text, text, epoch — ``set_status``
  (called by the API, the worker and ``study.run``) — queued, running, stopped, done, failed
* ``submitted_at`` — epoch — ``queue`` — when the API queued it
* ``started_at`` — epoch — ``study.run`` — when it first ran (``budget.timeout`` counts from it)
* ``system_before`` — object — ``study.run`` — the system knobs' values before the study
  changed any (the report's "System settings before the study")
* ``noise`` — ``Noise``, parts — ``study.trial`` (the defaults trial) — the noise floor
* ``screening`` — ``Screening``, parts — ``study.screening`` — inert knobs, with evidence
* ``confirmation`` — ``Confirmation``, parts — ``study.confirmation`` — interleaved rounds
* ``claim:<job>`` — ``Claim`` — ``store.database.claim`` — a once-per-study job's owner
* ``abandoned:<n>`` — text — ``store.database.retry_abandoned`` — trial n died with its
  tuner (not counted) and why
* ``tuner_best`` — object (``results.Answer.to_dict``), parts — ``results.publish`` — the
  answer, for generic Optuna tools
* ``ci_runs`` — list of objects (``tuner.ci.record``), parts — ``tuner.ci.run`` — each
  ``tuner ci`` run of the study, newest last: environment, what changed, the deployed
  settings' speedups with intervals, the verdict
* ``ci_request`` — object — ``tuner.service.api.routes.ci`` — a ci run the API queued for a
  worker (``fail_on``, ``retune``, ``submitted_at``); the worker clears it when it starts
* ``comparisons`` — list of objects (``tuner.study.comparison_race.PairRace.record``), parts —
  ``tuner.study.comparison_race.confirm_pair`` (``tuner compare A B``), on both studies —
  each paired interleaved confirmation of this study's best against another study's best,
  newest last: the two studies (``a``, ``b``: name, trial, knobs, values), the ratio of b's
  best over a's (goal-aware: > 1 when b's is better) with its interval, rounds, verdict,
  when, on which host and host class (``measured_on``)

Trial user attributes:

* ``role`` — text — ``study.sampler`` (baselines), ``study.trial``, ``retry_abandoned`` —
  defaults, vendor or search
* ``applied`` — object, parts — ``study.trial`` — the knob values the launch applied
* ``launch`` — object (``execution.Launch.to_dict``), parts — ``study.trial`` — the launch
* ``shell`` — text, parts — ``study.trial`` — the launch as one shell line
* ``worker`` — ``Worker`` — ``study.trial`` — the process that runs the trial
* ``approximate`` — list of text, parts — ``study.trial`` — knobs a baseline could only
  approximate on this host
* ``samples`` — list of numbers, parts — ``study.trial`` — the value of each run
* ``runs`` — list of ``Run``, parts — ``study.trial`` — status, reason, output tail of each run
* ``reported`` — object, parts — ``study.trial`` — the SETTINGS line the workload printed
* ``loaded`` — ``Loaded`` — ``study.trial`` — the threading, BLAS and allocator libraries
  the workload's process mapped (``execution.libraries`` names; null: unknown) and the
  framework build it reported (its SETTINGS ``build``), from its first run that knew them
* ``echoed`` — object (knob -> text), parts — ``study.trial`` — the knob values the program
  printed it ran with, read back with the study's ``workload.echo`` pattern
* ``reason`` — text, parts — ``study.trial`` — why the trial failed or was pruned
* ``duplicate_of`` — integer — ``study.trial`` — the earlier trial whose result it reused
* ``run_seconds`` — number — ``study.trial`` — the seconds its runs took

Trial system attributes:

* ``tuner:sampler_params`` — object — ``study.sampler.baseline_trial`` — a baseline's whole
  point for the sampler (``tuner.store.sampled``)
* ``fixed_params`` — object — ``study.sampler.baseline_trial``, ``study.novelty`` —
  Optuna's own key (as ``Study.enqueue_trial`` writes it): the params the trial is given
* ``tuner:proposal`` — text — ``study.novelty`` — how a search trial's configuration was
  chosen (the sampler's first proposal, a later ask, or the nearest unexplored one)
* ``failed_trial``, ``retry_history`` — integer, list — ``retry_abandoned`` through Optuna's
  ``RetryHeartbeatStaleTrialCallback``, whose keys they are — the trial a retry repeats
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tuner.store.access import (
    Attr,
    Family,
    Scope,
    Source,
    SystemAttr,
    Target,
    attrs_of,
    dump_runs,
    integer,
    integers,
    json_object,
    mapping,
    number,
    numbers,
    object_or_none,
    objects,
    role,
    runs,
    same,
    text,
    text_or_empty,
    texts,
    to_dict,
)
from tuner.store.values import (
    Claim,
    Confirmation,
    Loaded,
    Noise,
    Run,
    Screening,
    Status,
    Worker,
)

if TYPE_CHECKING:
    from tuner.spec.models import StudySpec

T = TypeVar("T")

def _study(key: str, kind: str, writer: str, meaning: str, load: Callable[[Any], T],
           default: T, **options: Any) -> Attr[T]:
    return Attr(key=key, scope=Scope.STUDY, kind=kind, writer=writer, meaning=meaning,
                load=load, default=default, **options)


def _trial(key: str, kind: str, writer: str, meaning: str, load: Callable[[Any], T],
           default: T, **options: Any) -> Attr[T]:
    return Attr(key=key, scope=Scope.TRIAL, kind=kind, writer=writer, meaning=meaning,
                load=load, default=default, **options)


OPENING = "tuner.study.opening.open_study"
QUEUE = "tuner.service.api.routes.studies.queue"
OBJECTIVE = "tuner.study.trial.Objective"
SET_STATUS = "tuner.store.attributes.set_status"
RETRY = "tuner.store.database.retry_abandoned"

# -- study user attributes ---------------------------------------------------------------
SPEC: Attr[Any] = _study("spec", "object", f"{QUEUE}, {OPENING}",
                         "the validated study, only what differs from the defaults",
                         same, None, parts=True)
SPEC_TEXT = _study("spec_text", "text", f"{QUEUE}, {OPENING}", "the study file it came from",
                   text, "", parts=True)
SPACE: Attr[dict[str, Any]] = _study(
    "space", "object", OPENING, "the resolved search space (size, dimensions)", json_object, {},
    parts=True)
SPACE_KEY: Attr[str | None] = _study(
    "space_key", "text", OPENING, "identity of the workload, objective and knob space",
    text, None)
FINGERPRINT: Attr[dict[str, Any]] = _study(
    "fingerprint", "object", OPENING, "the host that measures the study", json_object, {},
    parts=True)
HOST_CLASS: Attr[str | None] = _study(
    "host_class", "text", OPENING, "the kind of machine the study is measured on", text, None)
UNIT = _study("unit", "text", f"{QUEUE}, {OPENING}", "the metric's unit", text, "")
STATUS: Attr[str | None] = _study(
    "status", "text", SET_STATUS, "queued, running, stopped, done or failed", text, None)
STATUS_REASON = _study("status_reason", "text", SET_STATUS, "the status, for people",
                       text, "")
STATUS_AT: Attr[float | None] = _study("status_at", "epoch seconds", SET_STATUS,
                                       "when the status was set", number, None)
SUBMITTED_AT: Attr[float | None] = _study("submitted_at", "epoch seconds", QUEUE,
                                          "when the API queued the study", number, None)
STARTED_AT: Attr[float | None] = _study(
    "started_at", "epoch seconds", "tuner.study.run", "when the study first ran "
    "(budget.timeout counts from it)", number, None)
SYSTEM_BEFORE: Attr[dict[str, Any]] = _study(
    "system_before", "object", "tuner.study.run.StudyRun.open",
    "the system knobs' values on the machine before the study changed any (name -> value)",
    json_object, {})
NOISE: Attr[Noise | None] = _study(
    "noise", "Noise", f"{OBJECTIVE} (the defaults trial)", "the study's noise floor",
    Noise.from_dict, None, dump=to_dict, parts=True)
SCREENING: Attr[Screening | None] = _study(
    "screening", "Screening", "tuner.study.screening.screen", "inert knobs, with evidence",
    Screening.from_dict, None, dump=to_dict, parts=True)
CONFIRMATION: Attr[Confirmation | None] = _study(
    "confirmation", "Confirmation", "tuner.study.confirmation.confirm",
    "the interleaved confirmation of the best configurations", Confirmation.from_dict, None,
    dump=to_dict, parts=True)
TUNER_BEST: Attr[dict[str, Any] | None] = _study(
    "tuner_best", "object (tuner.results.Answer.to_dict)", "tuner.results.publish",
    "the study's answer, for generic Optuna tools", object_or_none, None, parts=True)
CI_RUNS: Attr[list[dict[str, Any]]] = _study(
    "ci_runs", "list of objects (tuner.ci.record)", "tuner.ci.run.CiRun",
    "each `tuner ci` run of the study, newest last", objects, [], parts=True)
CI_REQUEST: Attr[dict[str, Any] | None] = _study(
    "ci_request", "object", "tuner.service.api.routes.ci.request_ci",
    "a ci run queued through the API for a worker", object_or_none, None)
COMPARISONS: Attr[list[dict[str, Any]]] = _study(
    "comparisons", "list of objects (tuner.study.comparison_race.PairRace.record)",
    "tuner.study.comparison_race.confirm_pair",
    "each paired confirmation of this study's best against another study's best, newest last",
    objects, [], parts=True)
CLAIMS: Family[Claim] = Family(
    prefix="claim:", scope=Scope.STUDY, kind="Claim", writer="tuner.store.database.claim",
    meaning="who took a once-per-study job (screening, confirmation-<n>)",
    load=Claim.from_dict, dump=to_dict)
ABANDONED: Family[str] = Family(
    prefix="abandoned:", scope=Scope.STUDY, kind="text", writer=RETRY,
    meaning="trial <n> died with its tuner and was retried (not counted): why", load=text)

# -- trial user attributes ---------------------------------------------------------------
ROLE = _trial("role", "text", f"tuner.study.sampler.baseline_trial, {OBJECTIVE}, {RETRY}",
              "defaults, vendor or search", role, "search")
APPLIED: Attr[dict[str, Any] | None] = _trial(
    "applied", "object", OBJECTIVE, "the knob values the launch applied", mapping, None,
    parts=True)
LAUNCH: Attr[dict[str, Any] | None] = _trial(
    "launch", "object (tuner.execution.Launch.to_dict)", OBJECTIVE, "the launch",
    object_or_none, None, parts=True)
SHELL: Attr[str | None] = _trial("shell", "text", OBJECTIVE, "the launch as a shell line",
                                 text, None, parts=True)
WORKER: Attr[Worker | None] = _trial("worker", "Worker", OBJECTIVE,
                                     "the process that runs the trial", Worker.from_dict,
                                     None, dump=to_dict)
APPROXIMATE: Attr[list[str]] = _trial(
    "approximate", "list of text", OBJECTIVE, "knobs a baseline could only approximate here",
    texts, [], parts=True)
SAMPLES: Attr[list[float]] = _trial("samples", "list of numbers", OBJECTIVE,
                                    "the value of each run", numbers, [], parts=True)
RUNS: Attr[list[Run]] = _trial("runs", "list of Run", OBJECTIVE,
                               "status, reason and output tail of each run", runs, [],
                               dump=dump_runs, parts=True)
REPORTED: Attr[dict[str, Any] | None] = _trial(
    "reported", "object", OBJECTIVE, "the settings the workload printed it ran with",
    object_or_none, None, parts=True)
LOADED: Attr[Loaded | None] = _trial(
    "loaded", "Loaded", OBJECTIVE, "the threading, BLAS and allocator libraries the "
    "workload's process mapped and the framework build it reported", Loaded.from_dict, None,
    dump=to_dict, parts=True)
ECHOED: Attr[dict[str, Any] | None] = _trial(
    "echoed", "object (knob -> text)", OBJECTIVE, "the knob values the program printed it ran "
    "with, read back with workload.echo", object_or_none, None, parts=True)
REASON = _trial("reason", "text", OBJECTIVE, "why the trial failed or was pruned",
                text_or_empty, "", parts=True)
DUPLICATE_OF: Attr[int | None] = _trial(
    "duplicate_of", "integer", OBJECTIVE, "the earlier trial whose result it reused "
    "(the same configuration)", integer, None)
RUN_SECONDS: Attr[float | None] = _trial("run_seconds", "number", OBJECTIVE,
                                         "the seconds its runs took", number, None)

# -- trial system attributes -------------------------------------------------------------
SAMPLER_PARAMS: SystemAttr[dict[str, Any] | None] = SystemAttr(
    key="tuner:sampler_params", kind="object {params, distributions}",
    writer="tuner.study.sampler.baseline_trial",
    meaning="a baseline's whole point for the sampler (tuner.store.sampled)",
    load=object_or_none, default=None)
FIXED_PARAMS: SystemAttr[dict[str, Any]] = SystemAttr(
    key="fixed_params", kind="object",
    writer="tuner.study.sampler.baseline_trial, tuner.study.novelty",
    meaning="Optuna's own key (Study.enqueue_trial): the params the trial is given",
    load=mapping, default={})
PROPOSAL: SystemAttr[str] = SystemAttr(
    key="tuner:proposal", kind="text", writer="tuner.study.novelty",
    meaning="how a search trial's configuration was chosen", load=text_or_empty, default="")
FAILED_TRIAL: SystemAttr[int | None] = SystemAttr(
    key="failed_trial", kind="integer", writer=f"{RETRY} (Optuna's retry callback)",
    meaning="the first trial a retry repeats", load=integer, default=None)
RETRY_HISTORY: SystemAttr[list[int]] = SystemAttr(
    key="retry_history", kind="list of integers", writer=f"{RETRY} (Optuna's retry callback)",
    meaning="the trials a retry repeats, oldest first", load=integers, default=[])

#: Every attribute, in the order above.
ATTRIBUTES: tuple[Attr[Any] | Family[Any] | SystemAttr[Any], ...] = (
    SPEC, SPEC_TEXT, SPACE, SPACE_KEY, FINGERPRINT, HOST_CLASS, UNIT, STATUS, STATUS_REASON,
    STATUS_AT, SUBMITTED_AT, STARTED_AT, SYSTEM_BEFORE, NOISE, SCREENING, CONFIRMATION,
    TUNER_BEST, CI_RUNS, CI_REQUEST, COMPARISONS, CLAIMS,
    ABANDONED, ROLE, APPLIED, LAUNCH, SHELL, WORKER, APPROXIMATE, SAMPLES, RUNS, REPORTED,
    LOADED, ECHOED, REASON, DUPLICATE_OF, RUN_SECONDS, SAMPLER_PARAMS, FIXED_PARAMS, PROPOSAL,
    FAILED_TRIAL, RETRY_HISTORY)


def key_of(attribute: Attr[Any] | Family[Any] | SystemAttr[Any]) -> str:
    """The key, or for a family its prefix."""
    return attribute.prefix if isinstance(attribute, Family) else attribute.key


# -- the helpers that read or write several ----------------------------------------------
def status_of(source: Source) -> Status:
    attrs = attrs_of(source)
    return Status(state=STATUS.get(attrs), reason=STATUS_REASON.get(attrs),
                  at=STATUS_AT.get(attrs))


def set_status(study: Target, state: str, reason: str = "") -> None:
    """The study's place in the service's life: queued, running, stopped, done, failed. The
    reason is one line for people, cut to fit optuna-dashboard's 1,024 characters."""
    STATUS.put(study, state)
    STATUS_REASON.put(study, reason if len(reason) <= 1000 else reason[:997] + "...")
    STATUS_AT.put(study, time.time())


def put_spec(study: Target, spec: StudySpec, text: str) -> None:
    """The validated study as ``SPEC``, holding only what differs from the defaults (a few
    hundred characters: it fits whole, so a worker's ``StudySpec.model_validate`` of the
    stored attribute reads it back as it was validated), and the file as ``SPEC_TEXT``."""
    SPEC.put(study, spec.model_dump(mode="json", by_alias=True, exclude_defaults=True))
    SPEC_TEXT.put(study, text)


def spec_of(source: Source) -> dict[str, Any]:
    """The stored study with every default filled in (as it was stored when it does not
    validate any more, e.g. under a newer, stricter tuner)."""
    from pydantic import ValidationError

    from tuner.spec.models import StudySpec

    raw = SPEC.get(source)
    if not isinstance(raw, dict):
        return {}
    try:
        return StudySpec.model_validate(raw).model_dump(mode="json", by_alias=True)
    except (ValidationError, ValueError, TypeError):
        return dict(raw)


def applied_of(source: Source, params: Mapping[str, Any]) -> dict[str, Any]:
    """The knob values a trial applied (its params for a trial stored without them: one
    that never started). Empty for the defaults trial: it applied nothing."""
    applied = APPLIED.get(source)
    return dict(params if applied is None else applied)
