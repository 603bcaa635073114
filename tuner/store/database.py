"""The study database: Optuna's relational storage (SQLite by default, PostgreSQL when
workers on several machines share a study), with heartbeats so that a trial whose process
died is failed and retried; which trials count; the claims of once-per-study jobs. What
tuner keeps in it as attributes is ``tuner.store.attributes``.
"""

from __future__ import annotations

import copy
import logging
import random
import time
import warnings
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import NotFoundError, StorageError
from tuner.settings import get_settings
from tuner.store import attributes, snapshot
from tuner.store.attributes import ABANDONED, CLAIMS, ROLE, WORKER
from tuner.store.gate import StudyGate
from tuner.store.values import Claim, Worker

logger = logging.getLogger(__name__)

MAX_RETRIES = 3


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite in WAL mode with synchronous=NORMAL: readers (the API, the dashboard) never
    block the tuner, and a commit does not wait for an fsync (the database stays consistent
    on a crash; only the last commits may be lost on power failure). With the default
    rollback journal every trial attribute cost an fsync, ~7 ms here, 37 per trial."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()


#: PostgreSQL sessions commit without waiting for the WAL flush: a commit costs a round
#: trip, not an fsync (~5 ms each here, some 20 per trial). What a commit wrote is visible
#: to every other session at once, as before, so locks, claims and budgets behave the same;
#: only a crash of the *server* may lose the commits of its last fraction of a second (never
#: corrupting anything), the trade SQLite's ``synchronous=NORMAL`` above makes too. A lost
#: trial end shows as a trial without heartbeat, failed and retried.
ASYNC_COMMIT = "-c synchronous_commit=off"


def retry_abandoned(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Record that ``trial`` failed through no fault of its workload (its tuner died or was
    interrupted) so it does not count against the budget, and enqueue it again.

    The mark is a study attribute of its own (``ABANDONED``, one per trial number): a
    finished trial's attributes cannot change, and one row per trial means concurrent
    workers never race. The retry is Optuna's ``RetryHeartbeatStaleTrialCallback`` (its
    ``failed_trial`` and ``retry_history`` system attributes, at most ``MAX_RETRIES``
    retries) given a copy of the trial that keeps of its user attributes only the role:
    the retry keeps the trial's params, distributions and sampler bookkeeping (grid id,
    ``SAMPLER_PARAMS``), nothing of the dead run.
    """
    ABANDONED.put(study, trial.number, reason)
    retry = copy.deepcopy(trial)  # the callback extends the retry history in place
    retry.user_attrs = ROLE.entry(ROLE.get(trial))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, retry)


def abandoned(study: optuna.Study) -> dict[int, str]:
    """Numbers of abandoned trials, with why."""
    return {int(number): reason for number, reason in ABANDONED.items(study).items()}


def _on_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    worker = WORKER.get(trial) or Worker()
    retry_abandoned(study, trial, f"abandoned: no heartbeat from worker {worker.host} "
                                  f"pid {worker.pid}; retried")


def open_storage(url: str, *, heartbeat: bool = True) -> RDBStorage:
    """Open (creating tables if needed) the study database at ``url``."""
    settings = get_settings()
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif url.startswith("postgresql"):
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = {"connect_timeout": settings.db_connect_timeout,
                                         "options": ASYNC_COMMIT}
    for attempt in range(1, SCHEMA_RACE_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url, engine_kwargs=engine_kwargs,
                    heartbeat_interval=settings.heartbeat_interval if heartbeat else None,
                    grace_period=settings.heartbeat_grace if heartbeat else None,
                    heartbeat_stale_trial_callback=_on_stale if heartbeat else None)
        except sqlalchemy.exc.DBAPIError as exc:
            if attempt < SCHEMA_RACE_ATTEMPTS and _lost_schema_race(exc):
                # another process is creating the tables of this new database right now
                # (an API and its workers started together): theirs will do
                time.sleep(0.2 * attempt + random.random() * 0.3)
                continue
            raise _cannot_open(url, exc) from exc
        except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot use it"
            raise _cannot_open(url, exc) from exc
    raise AssertionError("unreachable")


#: How many times ``open_storage`` tries when another process was creating the tables.
SCHEMA_RACE_ATTEMPTS = 6


def _lost_schema_race(exc: sqlalchemy.exc.DBAPIError) -> bool:
    """A duplicate type, table, index or version row: PostgreSQL's answer to a second
    ``CREATE TABLE`` of the same table while the first one's transaction commits."""
    if not isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError):
        return False
    text = str(exc)
    return "already exists" in text or "duplicate key" in text


def _cannot_open(url: str, exc: Exception) -> StorageError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"cannot open the study database {redact(url)}: {detail}")


def redact(url: str) -> str:
    """``url`` without its password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


def load(url: str, name: str, *, heartbeat: bool = True) -> optuna.Study:
    storage = open_storage(url, heartbeat=heartbeat)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        known = f"; studies here: {', '.join(sorted(names))}" if names else "; it holds no study"
        raise NotFoundError(f"no study named {name!r} in {redact(url)}{known}") from None


def live_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial except the abandoned ones."""
    gone = abandoned(study)
    return [t for t in snapshot.trials(study) if t.number not in gone]


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count against the budget: finished or running, not abandoned."""
    return [t for t in live_trials(study) if t.state != TrialState.WAITING]


def claim(study: optuna.Study, gate: StudyGate, job: str, hostname: str, *,
          timeout: float) -> bool:
    """Claim a once-per-study job (screening, confirmation) for this process. True if it is
    ours: unclaimed, already ours, or claimed by a worker that died or went silent for
    ``timeout`` seconds."""
    me = Worker.here(hostname)
    with gate.hold():
        current = CLAIMS.get(study.user_attrs, job)  # read now, under the lock: never kept
        if current is not None:
            holder = current.worker
            if holder == me:
                return True
            fresh = time.time() - current.at < timeout
            if fresh and not holder.is_dead(hostname):
                return False
        CLAIMS.put(study, job, Claim(worker=me, at=time.time()))
        return True


#: ``tuner.store.attributes.set_status``, where callers found it before.
set_status = attributes.set_status
