"""``/studies/{a}/compare/{b}``: two studies side by side, read-only (``tuner compare A B
--no-confirm`` as JSON): the best of each with its interval, the machine it was measured on,
the knob differences between the two bests, whether they measure the same workload, what
would stand in the way of a paired confirmation of the two, and the paired confirmations
``tuner compare`` stored (``tuner.results.comparison``). Nothing runs: a paired
confirmation measures on a machine of the studies' host class, from the command line.

Reads take ``ReadAccess`` like every other GET; names that are not study names are refused
(422) before anything is read, an unknown study is 404, a study without a completed trial
409. The dashboard's compare page (``/ui/compare``) reads through ``comparison_of``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field, TypeAdapter

from tuner.results.comparison import Comparison, ComparisonError, compare
from tuner.service.api import schemas
from tuner.service.api.deps import ReadAccess, Service, ServiceDep, load_study
from tuner.service.api.routes.studies import NOT_FOUND
from tuner.service.api.views import finite
from tuner.spec.models import Name

router = APIRouter(prefix="/studies", tags=["compare"])

#: The pattern of a study name (``tuner.spec.models.Name``).
NAME_PATTERN = str(TypeAdapter(Name).json_schema()["pattern"])
StudyName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=100,
                                description="a study name, as study files spell it")]


class ComparedSide(BaseModel):
    """One study's part: its answer, metric, goal and the machine it was measured on."""

    study: str
    metric: str
    unit: str
    direction: str
    answer: schemas.Answer
    measured_on: str | None = Field(description="the host class of the machine it was "
                                                "measured on")
    cpu_model: str
    workload: str
    knob_names: list[str] = Field(description="the knobs its study file names")


class KnobDifference(BaseModel):
    knob: str
    status: str = Field(description="same, different, only a or only b")
    a: Any = None
    b: Any = None
    in_a: bool
    in_b: bool
    note: str = Field(description="why a knob only one best sets is absent from the other")


class Blocker(BaseModel):
    reason: str
    forceable: bool = Field(description="`tuner compare --force` measures anyway")


class StudyComparison(BaseModel):
    """Two studies side by side. Every ratio is b's best over a's, goal-aware: above 1
    means b's best is the better (b/a for a throughput, a/b for a latency)."""

    a: ComparedSide
    b: ComparedSide
    knobs: list[KnobDifference] = Field(description="the differences first, then the same")
    same_workload: bool
    workload_differences: list[str]
    same_host_class: bool
    comparable: bool = Field(description="same metric, goal and unit: a ratio can mean "
                                         "something")
    incomparable: str | None
    blockers: list[Blocker] = Field(description="what stands in the way of a paired "
                                                "confirmation (this machine not judged)")
    confirmations: list[dict[str, Any]] = Field(
        description="paired interleaved confirmations `tuner compare` stored, oldest first, "
                    "each as b over a: ratio, low, high (its interval), rounds, verdict, at, "
                    "host, measured_on, and each side's trial, knobs and values")
    latest: dict[str, Any] | None = Field(description="the newest of them")


def comparison_of(service: Service, a: str, b: str) -> Comparison:
    """The comparison of studies ``a`` and ``b`` of the service's storage (a study with
    itself: every knob the same), 404 for an unknown one, 409 when one cannot be
    compared."""
    first, second = load_study(service, a), load_study(service, b)
    try:
        return compare(first, second)
    except ComparisonError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/{a}/compare/{b}", response_model=StudyComparison,
            responses={**NOT_FOUND, 409: {"model": schemas.Error, "description": "a study "
                                          "has no completed trial, or cannot be read"}})
def get_comparison(a: StudyName, b: StudyName, service: ServiceDep,
                   _: ReadAccess) -> StudyComparison:
    """Studies ``a`` and ``b`` side by side: their bests, knob differences, whether they
    measure the same workload on one host class, and the stored paired confirmations."""
    comparison = comparison_of(service, a, b)
    data = finite(comparison.to_dict())
    return StudyComparison(**data, latest=data["confirmations"][-1]
                           if data["confirmations"] else None)
