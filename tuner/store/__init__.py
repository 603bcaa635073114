"""The study database: Optuna's relational storage (SQLite, or PostgreSQL shared by
workers on several machines) with heartbeats; the records tuner keeps in it as study and
trial attributes, each defined once in ``attributes`` (the only module that spells a key)
with its typed value in ``values``, large ones stored in parts by ``records``; the study
gate that serialises trial claims; what the sampler sees of a stored baseline trial.

May import: the top-level modules and ``spec``."""

from tuner.store import attributes, records
from tuner.store.database import (
    abandoned,
    claim,
    counted_trials,
    live_trials,
    load,
    open_storage,
    redact,
    retry_abandoned,
    set_status,
)
from tuner.store.gate import StudyGate
from tuner.store.sampled import SAMPLER_PARAMS, as_sampled, with_sampler_params
from tuner.store.values import (
    Claim,
    Confirmation,
    Loaded,
    Noise,
    Run,
    Screened,
    Screening,
    Status,
    Worker,
)

__all__ = [
    "SAMPLER_PARAMS",
    "Claim",
    "Confirmation",
    "Loaded",
    "Noise",
    "Run",
    "Screened",
    "Screening",
    "Status",
    "StudyGate",
    "Worker",
    "abandoned",
    "as_sampled",
    "attributes",
    "claim",
    "counted_trials",
    "live_trials",
    "load",
    "open_storage",
    "records",
    "redact",
    "retry_abandoned",
    "set_status",
    "with_sampler_params",
]
