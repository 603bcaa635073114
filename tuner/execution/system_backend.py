"""Runs that change the machine: a backend wrapper that applies a launch's system settings
(``Launch.system``) under the exclusive host lock (every NUMA node's: no other trial, pinned
or not, runs while the machine is changed), through the journal, and restores them after
the run. A launch without system settings passes straight through. A setting that cannot be
applied fails the run (an ``Outcome``, the study goes on); one that cannot be restored
raises ``SystemStateError`` and stops everything, loudly."""

from __future__ import annotations

from dataclasses import replace

from tuner.errors import SystemStateError
from tuner.execution.backend import Backend
from tuner.execution.host_lock import HostLock
from tuner.execution.outcome import OnReading, Outcome, Status
from tuner.execution.runner import RunRequest
from tuner.execution.system_journal import CannotApply, Journal
from tuner.host import Host
from tuner.settings import Settings


class SystemBackend(Backend):
    """Wraps a backend: system settings in force for exactly the run that asked for them."""

    def __init__(self, inner: Backend, *, lock: HostLock, journal: Journal) -> None:
        self.inner = inner
        self.lock = lock
        self.journal = journal

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        settings = request.launch.system
        if not settings:
            return self.inner.run(request, on_reading)
        applied = replace(request, launch=replace(request.launch, system=()))
        with self.lock.hold(None):
            try:
                with self.journal.changed(settings):
                    return self.inner.run(applied, on_reading)
            except CannotApply as exc:
                return Outcome(status=Status.FAILED, reason=str(exc))

    def close(self) -> None:
        self.inner.close()


def journal_of(settings: Settings) -> Journal:
    """This host's journal (``settings.state_dir``)."""
    return Journal(settings.state_dir, crash_at=settings.test_crash_at)


def with_system_settings(inner: Backend, host: Host, settings: Settings) -> SystemBackend:
    """``inner`` wrapped so that launches with system settings run as described above."""
    return SystemBackend(inner, lock=HostLock(host, settings.lock_dir),
                         journal=journal_of(settings))


def recover_at_start(settings: Settings) -> str | None:
    """What every ``tuner`` command says first: a left-over journal restored (or discarded),
    a warning when it could not be, or None when there was none (or its owner is alive)."""
    try:
        recovery = journal_of(settings).recover()
    except (OSError, SystemStateError) as exc:
        return (f"WARNING: a system-settings journal was left on this host and could not be "
                f"restored: {exc}")
    return recovery.message() if recovery is not None else None


def restore_on_demand(settings: Settings) -> tuple[bool, str]:
    """``tuner restore``: (done, what to say). Not done when a running tuner owns the
    journal: it restores its own settings when its run ends."""
    journal = journal_of(settings)
    found = journal.read()
    if found is None:
        return True, f"nothing to restore: no system-settings journal in {journal.directory}"
    recovery = journal.recover()
    if recovery is None:
        return False, (f"the journal {journal.path} belongs to a running tuner (pid "
                       f"{found[0].get('pid')}), which restores its own settings when its run "
                       "ends")
    return True, recovery.message()
