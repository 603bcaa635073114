"""Workers: processes, on one machine or many, that run the studies queued in a shared
study database (PostgreSQL for several machines; Optuna's relational storage is the
distributed engine).

A worker claims studies whose status is ``queued`` or ``running`` and whose host class is
unset or equal to its own machine's (a study tuned on one kind of machine must never mix in
trials measured on another), runs their trials through ``tuner.study.run.tune``, and goes on
to the next study or sleeps. A study this machine cannot run (another host class claimed it,
or its knobs ask for more than this host has) is left for the workers that can, with the
reason logged once; only a study that no host could run (its stored spec is invalid, or it
does not fit even a generous generic machine) is marked ``failed``. Trial slots are
claimed under the study's lock (exact budgets with any number of workers); every run holds
the host lock (one measurement per machine, or per NUMA node for pinned runs); heartbeats let
another worker fail and retry the trial of a worker that was killed. SIGTERM (or Ctrl-C)
stops it cleanly: the running trial finishes and is recorded, no new one starts; a second
signal stops the trial too (it is failed as abandoned and retried by another worker).

A ci run queued through the API (``POST /studies/{name}/ci``: the study attribute
``ci_request``) is taken by the first worker that can fit the study on its host, whatever
the study's host class (finding out what changed is the point), and run as ``tuner ci``
would, under the host lock; its record joins the study's ci history, or, when it fails, the
request keeps the error for the API to show. A run taken by a worker that died (taken more
than ``claim_timeout`` seconds ago and never finished) is taken again.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

import optuna

from tuner.errors import SpecError, StudyConflictError, TunerError
from tuner.execution.forkserver import backend_for
from tuner.execution.host_lock import HostLock, LockedBackend
from tuner.execution.runtimes import RuntimeProblem, fingerprint_of
from tuner.host import Fingerprint, Host, fingerprint, generic_host, probe_host
from tuner.settings import Settings
from tuner.space.search_space import SpaceError, build_space
from tuner.spec.models import StudySpec
from tuner.store import database as store
from tuner.store.attributes import (
    CI_REQUEST,
    HOST_CLASS,
    SPEC,
    SPEC_TEXT,
    STARTED_AT,
    STATUS,
)
from tuner.store.database import set_status
from tuner.store.gate import StudyGate
from tuner.study.run import Collaborators, RunLimits, StudyRun, StudyTarget

logger = logging.getLogger(__name__)

RUNNABLE = ("queued", "running")


@dataclass
class Worker:
    storage_url: str
    host: Host
    fingerprint: Fingerprint
    settings: Settings
    stop_event: threading.Event = field(default_factory=threading.Event)
    hostname: str = field(default_factory=socket.gethostname)
    #: Studies this worker leaves to others, with why (each reason is logged once).
    skipped: dict[str, str] = field(default_factory=dict)
    #: Ids of studies this host cannot fit: not fitted again (neither the host nor a stored
    #: spec changes; a study deleted and submitted again gets a new id).
    unfit: set[int] = field(default_factory=set)
    #: Fingerprints of the studies that name a runtime (``workload.python``), by runtime.
    runtime_prints: dict[str, Fingerprint] = field(default_factory=dict)

    @classmethod
    def on_this_host(cls, storage_url: str, settings: Settings) -> Worker:
        """A worker for this machine: its topology probed, its fingerprint taken."""
        host = probe_host()
        return cls(storage_url=storage_url, host=host,
                   fingerprint=fingerprint(host, cache_dir=settings.cache_dir),
                   settings=settings)

    def __post_init__(self) -> None:
        self.storage = store.open_storage(self.storage_url)
        self.host_lock = HostLock(self.host, self.settings.lock_dir)
        self.signals = 0

    # --- signals ------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            self.signals += 1
            self.stop_event.set()
            logger.warning("signal %d: finishing the running trial, then stopping", signum)
            if self.signals > 1:
                raise KeyboardInterrupt  # second signal: stop the trial too

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # --- work ---------------------------------------------------------------------------
    def fingerprint_for(self, python: str | None) -> Fingerprint:
        """This machine's fingerprint for a study whose ``workload.python`` is ``python``
        (``RuntimeProblem`` if this machine has no such runtime)."""
        if python is None:
            return self.fingerprint
        if python not in self.runtime_prints:
            self.runtime_prints[python] = fingerprint_of(self.host, python,
                                                         settings=self.settings)
        return self.runtime_prints[python]

    def candidates(self) -> list[str]:
        out = []
        for summary in optuna.get_all_study_summaries(self.storage, include_best_trial=False):
            attrs = summary.user_attrs
            if STATUS.get(attrs) not in RUNNABLE or summary._study_id in self.unfit:
                continue
            host_class = HOST_CLASS.get(attrs)
            if host_class is None:
                out.append(summary.study_name)
                continue
            python = _python_of(attrs)
            try:
                mine = self.fingerprint_for(python).host_class
            except RuntimeProblem as exc:
                self.skip(summary.study_name, f"workload.python: {exc}")
                continue
            if host_class == mine:
                out.append(summary.study_name)
            else:
                self.skip(summary.study_name, f"it is measured on host class {host_class}; "
                                              f"this worker's is {mine}"
                                              + (f" (runtime {python})" if python else ""))
        return sorted(out)

    def skip(self, name: str, reason: str) -> None:
        """Leave study ``name`` to other workers; say why (once per reason)."""
        if self.skipped.get(name) != reason:
            self.skipped[name] = reason
            logger.warning("study %s: left for other workers: %s", name, reason)

    def fail(self, study: optuna.Study, reason: str) -> None:
        """Mark a study that no host could run ``failed``, for everyone."""
        logger.warning("study %s: failed: %s", study.study_name, reason)
        set_status(study, "failed", reason)

    def misfit(self, study: optuna.Study, spec: StudySpec, problem: Exception) -> None:
        """This host cannot build the study's space. Fail it only if no host could (it does
        not fit a generous generic machine either); otherwise leave it to the others."""
        try:
            build_space(spec, generic_host())
        except (ValueError, SpaceError, SpecError) as exc:
            self.fail(study, f"cannot run on any host: {exc}")
            return
        self.unfit.add(study._study_id)
        self.skip(study.study_name, f"does not fit this host ({self.hostname}, host class "
                                    f"{self.fingerprint.host_class}): {problem}")

    def ci_candidates(self) -> list[str]:
        """Studies with a ci run queued and not taken (nor failed)."""
        return sorted(s.study_name for s in optuna.get_all_study_summaries(
            self.storage, include_best_trial=False)
            if _pending(CI_REQUEST.get(s.user_attrs), self.settings.claim_timeout)
            and s._study_id not in self.unfit)

    def run_ci(self, name: str) -> bool:
        """Take the queued ci run of study ``name`` (if no other worker did) and run it."""
        from tuner.ci import CiOptions, CiRun, CiTarget

        study = optuna.load_study(study_name=name, storage=self.storage)
        gate = StudyGate(self.storage_url, name)
        try:
            with gate.hold():  # one worker takes it
                request = CI_REQUEST.get(study)
                if not _pending(request, self.settings.claim_timeout):
                    return False
                assert request is not None
                CI_REQUEST.put(study, {**request, "taken_by": self.hostname,
                                       "taken_at": time.time()})
            try:
                spec = StudySpec.model_validate(SPEC.get(study))
                space = build_space(spec, self.host)
                target = CiTarget(space=space, storage_url=self.storage_url,
                                  fingerprint=self.fingerprint_for(spec.workload.python),
                                  spec_text=SPEC_TEXT.get(study))
                backend = LockedBackend(backend_for(spec.launcher), self.host_lock)
                try:
                    record = CiRun(target, settings=self.settings, options=CiOptions(
                        retune=request.get("retune", "auto"),
                        fail_on=request.get("fail_on", "regressed")), backend=backend).run()
                finally:
                    backend.close()
            except (TunerError, ValueError, SpaceError) as exc:
                CI_REQUEST.put(study, {**request, "taken_by": self.hostname,
                                       "error": str(exc)[:2000], "failed_at": time.time()})
                logger.warning("study %s: ci run failed: %s", name, exc)
                return False
            CI_REQUEST.put(study, None)
            logger.info("study %s: ci run %s: %s", name, record["run"], record["verdict"])
            return True
        finally:
            gate.close()

    def run_once(self) -> int:
        """Work on every queued ci run and every runnable study once; returns how many it
        worked on."""
        worked = 0
        for name in self.ci_candidates():
            if self.stop_event.is_set():
                break
            try:
                worked += self.run_ci(name)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one broken study must not stop the worker
                logger.exception("study %s: ci: %s", name, exc)
        for name in self.candidates():
            if self.stop_event.is_set():
                break
            try:
                if self.work_on(name):
                    worked += 1
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one broken study must not stop the worker
                logger.exception("study %s: %s", name, exc)
        return worked

    def run_forever(self, *, max_idle: float | None = None) -> None:
        """Until stopped (or idle for ``max_idle`` seconds, for tests and batch use)."""
        idle_since = time.monotonic()
        while not self.stop_event.is_set():
            if self.run_once():
                idle_since = time.monotonic()
                continue
            if max_idle is not None and time.monotonic() - idle_since >= max_idle:
                return
            self.stop_event.wait(self.settings.worker_poll_seconds)

    def work_on(self, name: str) -> bool:
        study = optuna.load_study(study_name=name, storage=self.storage)
        attrs = study.user_attrs
        try:
            spec = StudySpec.model_validate(SPEC.get(attrs))
        except (KeyError, TypeError, ValueError) as exc:
            self.fail(study, f"its stored study file is invalid: {exc}")
            return False
        try:
            space = build_space(spec, self.host)
        except (ValueError, SpaceError, SpecError) as exc:
            self.misfit(study, spec, exc)
            return False
        self.skipped.pop(name, None)
        for note in space.notes:
            logger.info("%s", note)

        def should_stop() -> bool:
            return self.stop_event.is_set() or (
                STATUS.get(study) not in RUNNABLE)

        gate = StudyGate(self.storage_url, name)
        try:
            target = StudyTarget(space=space, storage_url=self.storage_url,
                                 fingerprint=self.fingerprint_for(spec.workload.python),
                                 spec_text=SPEC_TEXT.get(attrs))
            backend = LockedBackend(backend_for(spec.launcher), self.host_lock)
            result = StudyRun(target, collaborators=Collaborators(
                settings=self.settings, backend=backend, gate=gate, should_stop=should_stop),
                limits=RunLimits(recover_local=False, started_at=STARTED_AT.get(attrs))).run()
        except StudyConflictError as exc:
            # another host class claimed it first, or its stored space differs from the one
            # this host builds (tools such as numactl differ): others may run it
            self.skip(name, str(exc))
            return False
        except RuntimeProblem as exc:
            # this machine's runtime could not be probed: others may have a working one
            self.skip(name, f"workload.python: {exc}")
            return False
        except TunerError as exc:
            self.fail(study, str(exc))
            return False
        finally:
            gate.close()
        return result.ran > 0 or result.confirmation is not None


def _python_of(attrs: dict[str, object]) -> str | None:
    """``workload.python`` of a stored study (None when unset or unreadable)."""
    try:
        python = SPEC.get(attrs)["workload"].get("python")
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    return python if isinstance(python, str) else None


def _pending(request: dict[str, object] | None, stale_after: float) -> bool:
    """A queued ci run that no worker took, or that a worker took ``stale_after`` seconds ago
    and never finished (it died: the run is taken again). A taken one that failed keeps its
    error and is not run again until it is requested again."""
    if request is None or "error" in request:
        return False
    taken_at = request.get("taken_at")
    if "taken_by" not in request:
        return True
    return isinstance(taken_at, int | float) and time.time() - taken_at > stale_after
