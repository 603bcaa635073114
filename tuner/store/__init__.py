"""The study database: Optuna's relational storage (SQLite, or PostgreSQL shared by
workers on several machines) with heartbeats; the records tuner keeps in it as study and
trial attributes; the study gate that serialises trial claims; what the sampler sees of a
stored baseline trial.

May import: the top-level modules and ``spec``."""

from tuner.store import records
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
    this_worker,
    worker_is_dead,
)
from tuner.store.gate import StudyGate
from tuner.store.sampled import SAMPLER_PARAMS, as_sampled, with_sampler_params

__all__ = [
    "SAMPLER_PARAMS",
    "StudyGate",
    "abandoned",
    "as_sampled",
    "claim",
    "counted_trials",
    "live_trials",
    "load",
    "open_storage",
    "records",
    "redact",
    "retry_abandoned",
    "set_status",
    "this_worker",
    "with_sampler_params",
    "worker_is_dead",
]
