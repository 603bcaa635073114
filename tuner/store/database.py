"""The study database: Optuna's relational storage (SQLite by default, PostgreSQL when
workers on several machines share a study), with heartbeats so that a trial whose process
died is failed and retried, and helpers to read what tuner keeps as attributes.

Study user attributes: ``spec`` (the validated study, JSON), ``spec_text`` (the file it came
from), ``space`` and ``space_key``, ``fingerprint`` and ``host_class``, ``unit``, ``status``.
Trial user attributes: ``role`` (defaults, vendor, search), ``applied`` (the knob values
the launch applied), ``launch`` and ``shell``, ``samples``, ``runs`` (status, reason, output
tail of each run), ``reported`` (the SETTINGS the workload printed), ``worker``, ``reason``.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from tuner.errors import NotFoundError, StorageError
from tuner.settings import get_settings

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


ABANDONED = "abandoned:"


def retry_abandoned(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Record that ``trial`` failed through no fault of its workload (its tuner died or was
    interrupted) so it does not count against the budget, and enqueue it again.

    The mark is a study attribute of its own (``abandoned:<number>``): a finished trial's
    attributes cannot change, and one row per trial means concurrent workers never race.
    The retry keeps the trial's parameters, role and sampler bookkeeping (grid id), nothing
    of the dead run.
    """
    study.set_user_attr(f"{ABANDONED}{trial.number}", reason)
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    system_attrs = {**trial.system_attrs, "failed_trial": history[0], "retry_history": history}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={"role": trial.user_attrs.get("role", "search")},
        system_attrs=system_attrs))


def abandoned(study: optuna.Study) -> dict[int, str]:
    """Numbers of abandoned trials, with why."""
    return {int(key[len(ABANDONED):]): str(value) for key, value in study.user_attrs.items()
            if key.startswith(ABANDONED)}


def _on_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    worker = trial.user_attrs.get("worker", {})
    retry_abandoned(study, trial, f"abandoned: no heartbeat from worker {worker.get('host')} "
                                  f"pid {worker.get('pid')}; retried")


def open_storage(url: str, *, heartbeat: bool = True) -> RDBStorage:
    """Open (creating tables if needed) the study database at ``url``."""
    settings = get_settings()
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif url.startswith("postgresql"):
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = {"connect_timeout": settings.db_connect_timeout}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url, engine_kwargs=engine_kwargs,
                heartbeat_interval=settings.heartbeat_interval if heartbeat else None,
                grace_period=settings.heartbeat_grace if heartbeat else None,
                heartbeat_stale_trial_callback=_on_stale if heartbeat else None)
    except Exception as exc:  # sqlalchemy raises many kinds; all mean "cannot use this DB"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open the study database {redact(url)}: {detail}") from exc


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
    return [t for t in study.get_trials(deepcopy=False) if t.number not in gone]


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count against the budget: finished or running, not abandoned."""
    return [t for t in live_trials(study) if t.state != TrialState.WAITING]


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None if no such process)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def this_worker(hostname: str) -> dict[str, Any]:
    pid = os.getpid()
    return {"host": hostname, "pid": pid, "started": process_start_time(pid)}


def claim(study: optuna.Study, gate: Any, job: str, hostname: str, *,
          timeout: float) -> bool:
    """Claim a once-per-study job (screening, confirmation) for this process. True if it is
    ours: unclaimed, already ours, or claimed by a worker that died or went silent for
    ``timeout`` seconds."""
    me = this_worker(hostname)
    with gate.hold():
        current = study.user_attrs.get(f"claim:{job}")
        if current is not None:
            holder = current.get("worker", {})
            if holder == me:
                return True
            fresh = time.time() - float(current.get("at", 0)) < timeout
            if fresh and not worker_is_dead(holder, hostname):
                return False
        study.set_user_attr(f"claim:{job}", {"worker": me, "at": time.time()})
        return True


def worker_is_dead(worker: dict[str, Any], hostname: str) -> bool:
    """True only when we can tell: the worker ran on this host and its process is gone."""
    if worker.get("host") != hostname or not isinstance(worker.get("pid"), int):
        return False
    started = process_start_time(worker["pid"])
    return started is None or started != worker.get("started")


def set_status(study: optuna.Study, status: str, reason: str = "") -> None:
    """The study's place in the service's life: queued, running, stopped, done, failed. The
    reason is one line for people, cut to fit optuna-dashboard's 1,024 characters."""
    study.set_user_attr("status", status)
    study.set_user_attr("status_reason", reason if len(reason) <= 1000 else reason[:997] + "...")
    study.set_user_attr("status_at", time.time())
