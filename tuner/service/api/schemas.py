"""The API's response bodies (and what its OpenAPI schema documents)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="items matching the query, on all pages")
    offset: int
    limit: int


class Issue(BaseModel):
    source: str
    line: int | None
    field: str
    message: str


class Invalid(BaseModel):
    detail: str
    issues: list[Issue]


class Error(BaseModel):
    detail: str


class Speedup(BaseModel):
    ratio: float
    low: float | None = None
    high: float | None = None
    verdict: str | None = None
    floor: float | None = None
    rounds: int | None = None
    level: float | None = None
    half_width: float | None = Field(None, description="relative half-width of the interval "
                                                       "(the precision the confirmation "
                                                       "reached)")


class Answer(BaseModel):
    """The study's answer to "what is best", the same on every surface (``tuner list``,
    ``tuner best``, the API, the dashboard): the confirmed winner with the 95% interval of
    its throughput, or, before the confirmation ran, the best search value (not confirmed:
    a few single runs, never compared side by side with the baselines)."""

    trial: int
    role: str
    knobs: dict[str, Any]
    value: float
    low: float | None = Field(None, description="95% interval of the confirmed mean")
    high: float | None = None
    unit: str
    metric: str
    confirmed: bool
    runs: int = Field(description="interleaved rounds of the confirmation, or search runs")
    basis: str = Field(description="what the value rests on: the confirmation's rounds, or "
                                   "unconfirmed single search runs")
    label: str = Field(description="the answer in one line, as every surface prints it")
    failed_baselines: list[str] = Field(
        default_factory=list, description="baselines that failed ('defaults', 'vendor'): the "
                                          "answer is not compared with them")
    compared_with: list[str] = Field(
        default_factory=list, description="baselines that ran: the answer and its speedups "
                                          "are stated against these only (none: nothing to "
                                          "compare against, no speedup claimed)")


class Best(BaseModel):
    trial: int
    role: str
    value: float | None
    unit: str
    confirmed: bool
    interval: dict[str, float] | None = Field(
        None, description="mean and 95% interval of the confirmed throughput")
    knobs: dict[str, Any]
    speedups: dict[str, Speedup] = Field(
        description="over 'defaults' and 'vendor'; intervals once confirmed")
    inert: dict[str, str] = Field(description="knobs found inert, with the evidence")
    launch: str = Field(description="the launch line (numactl ... env ... program)")
    env: str = Field(description="the settings as export lines")
    label: str = Field("", description="the answer in one line (see Answer)")


class StudyItem(BaseModel):
    name: str
    workload: str
    status: str
    status_reason: str = ""
    host_class: str | None
    trials: int = Field(description="trials that count against the budget")
    planned: int | None
    metric: str
    unit: str
    best: float | None = Field(description="the answer's value (confirmed mean, or the "
                                           "unconfirmed search value)")
    confirmed: bool
    speedup_over_defaults: Speedup | None
    answer: Answer | None = None


class Baseline(BaseModel):
    trial: int
    value: float | None
    applied: dict[str, Any]
    libraries: list[str] | None = Field(
        default=None, description="threading, BLAS and allocator libraries its process "
        "mapped (libgomp, libiomp5, libomp, libtbb, openblas, jemalloc, tcmalloc); null: "
        "unknown")
    build: dict[str, Any] | None = Field(
        default=None, description="the framework build the workload reported")


class FailedBaseline(BaseModel):
    """A baseline none of whose trials completed: why, and the end of its output."""

    role: str = Field(description="'defaults' or 'vendor'")
    label: str = Field(description="how reports name it ('framework defaults', ...)")
    trial: int = Field(description="its (last) failed trial")
    reason: str
    tail: list[str] = Field(description="the last lines of the output of its failed run")


class StudyDetail(StudyItem):
    description: str
    spec: dict[str, Any]
    spec_text: str
    space: dict[str, Any]
    fingerprint: dict[str, Any]
    noise: dict[str, Any] | None
    baselines: dict[str, Baseline]
    best_config: Best | None
    screening: dict[str, Any]
    confirmation: dict[str, Any] | None
    states: dict[str, int]
    explored: int
    space_size: int
    samples: int
    failed_baselines: dict[str, FailedBaseline] = Field(
        default_factory=dict, description="baselines that failed, by role, with reason and "
                                          "output tail")
    baseline_statement: str = Field(
        "", description="what the report says about failed baselines: which failed and why, "
                        "and what the answer is compared with instead ('' when none failed)")
    system_before: dict[str, Any] = Field(
        default_factory=dict, description="the system knobs' values on the machine before the "
                                          "study changed any (each trial's are put back)")


class Trial(BaseModel):
    number: int
    state: str
    role: str
    value: float | None
    params: dict[str, Any]
    applied: dict[str, Any]
    samples: list[float]
    intervals: list[float] = Field(description="per-interval values reported to the pruner")
    reason: str
    duplicate_of: int | None = None
    abandoned: bool = False
    launch: str | None = None
    started: str | None = None
    finished: str | None = None
    libraries: list[str] | None = Field(
        default=None, description="threading, BLAS and allocator libraries the workload's "
        "process mapped (libgomp, libiomp5, libomp, libtbb, openblas, jemalloc, tcmalloc); "
        "null: unknown")
    build: dict[str, Any] | None = Field(
        default=None, description="the framework build the workload reported (TensorFlow's "
        "oneDNN threading, PyTorch's parallel backend)")


class Submitted(BaseModel):
    name: str
    status: str
    url: str


class Health(BaseModel):
    status: str
    storage: str
    worker: str
    version: str


class CiHistory(BaseModel):
    """A study's ``tuner ci`` runs (the regression gate after upgrades: the deployed
    settings measured again in a changed environment), and a ci run queued through the
    API that no worker has taken yet."""

    study: str
    history: list[dict[str, Any]] = Field(description=(
        "the ci runs, oldest first, each as `tuner ci` recorded it: `run` (its number), "
        "`at` (epoch seconds), `host`, `host_class`, `environment` (field -> version: "
        "tensorflow, onednn, kernel, cpu_model, microcode, tuner, ...), `changed` (list of "
        "{field, label, then, now} since the previous run), `deployed` ({source, knobs}: "
        "the settings under test), `speedup_then` and `speedup_now` (the deployed settings' "
        "speedup over the framework defaults when tuned and in this run: {ratio, low, "
        "high, rounds, level} or null), `edge` (now over then: {ratio, low, high} or "
        "null), `comparisons` (list of {rival, ratio, low, high, standing}: the deployed "
        "settings over each rival; standing loss, behind, fine or open), `retuned` (the "
        "re-tune study or null), `new_best` ({label, knobs, ratio, low, high} or null), "
        "`verdict` (ok, improved, regressed or inconclusive), `reason` (one sentence), "
        "`threshold`, `rounds`, `exit_code`, `written` (where the new settings were "
        "written, or null). Older records may lack keys; anything that is not a JSON "
        "object is left out, and numbers JSON cannot carry (NaN, infinities) are null"))
    pending: dict[str, Any] | None = Field(None, description=(
        "the ci run queued through the API for a worker ({fail_on, retune, "
        "submitted_at}), or null when none waits"))
