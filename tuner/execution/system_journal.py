"""The system-settings journal: no change to the machine without the old value on disk first.

``Journal.changed(settings)`` is the only way a system setting is written. In order:

1. the journal lock is taken (held until the settings are back; the kernel drops it when
   its holder dies, which is how a later tuner tells a left-over journal from a live one);
2. the current value of every place the settings touch is read;
3. those old values are written to ``system-journal.json`` in the state directory, as a
   new file that is fsync'ed, renamed into place, and its directory fsync'ed;
4. only then are the settings written; a write that fails puts back what was written and
   the error is reported (the trial fails, the study goes on);
5. the trial runs; then every old value is written back (in reverse order, a second pass
   for writes that failed while another place was still changed, as cpufreq's min/max
   do), and only when all succeeded is the journal removed. A restore that fails raises
   ``SystemStateError`` and keeps the journal.

SIGINT, SIGTERM and SIGHUP are held back while a change or a restore is under way (on the
main thread), so an interrupt lands before or after them, never between a write and its
journal. Whatever is not caught (SIGKILL, a power cut of the process) is found at the next
start: ``recover`` (called by every ``tuner`` command and every worker) takes the journal
lock without waiting; when it gets it and a journal is there, its owner is gone, and the
old values are written back, saying so. A journal from before the last reboot is discarded:
the reboot reset what it changed, and writing its values now would undo what the boot set.

``crash_at`` (the ``TUNER_TEST_CRASH_AT`` setting) kills the process with SIGKILL at a named
point (``CRASH_POINTS``), so tests can prove the restore at each one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import SystemStateError
from tuner.execution.system_settings import (
    Form,
    SystemSetting,
    apply_setting,
    read_current,
    restore_value,
)

logger = logging.getLogger(__name__)

JOURNAL_NAME = "system-journal.json"
LOCK_NAME = "system-journal.lock"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

#: Where ``crash_at`` may kill the process: before the journal is written, after it is
#: written and before any setting, after the settings (the trial is about to run), and in
#: the middle of the restore (after the first old value is back).
CRASH_POINTS = ("before_journal", "after_journal", "after_change", "mid_restore")

_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class CannotApply(Exception):
    """A setting could not be read or written; nothing is left changed (the run fails, the
    study goes on)."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One place the journal can put back: its path (and register) and the old value."""

    path: str
    form: Form
    msr: int | None
    old: str
    knobs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "form": self.form, "msr": self.msr, "old": self.old,
                "knobs": list(self.knobs)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        return cls(path=str(data["path"]), form=data["form"], msr=data.get("msr"),
                   old=str(data["old"]), knobs=tuple(data.get("knobs", ())))

    def describe(self) -> str:
        where = f"{self.path} MSR {self.msr:#x}" if self.msr is not None else self.path
        return f"{where} = {self.old} ({', '.join(self.knobs)})"


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """What ``recover`` found: the entries put back (or discarded) and from which process."""

    entries: tuple[Entry, ...]
    pid: int
    discarded: bool = False

    def message(self) -> str:
        places = "; ".join(e.describe() for e in self.entries)
        if self.discarded:
            return (f"discarded the system-settings journal of tuner pid {self.pid}: it is "
                    f"from before the last reboot, which reset what it changed ({places})")
        return (f"restored {len(self.entries)} system setting(s) left changed by tuner pid "
                f"{self.pid}, which stopped without restoring them: {places}")


#: Where system settings live (below a root: ``/`` or a test's fake tree).
SYSTEM_PARTS = (("sys",), ("proc", "sys"), ("dev", "cpu"))


def system_place(path: str) -> bool:
    """Whether ``path``, resolved, lies in a ``sys``, ``proc/sys`` or ``dev/cpu`` folder."""
    parts = Path(os.path.realpath(path)).parts
    return any(parts[i:i + len(p)] == p for p in SYSTEM_PARTS for i in range(len(parts)))


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP wait (on the main thread) until the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The journal of one host, in ``directory`` (the state directory)."""

    def __init__(self, directory: Path, *, crash_at: str | None = None) -> None:
        self.directory = directory
        self.path = directory / JOURNAL_NAME
        self.lock_path = directory / LOCK_NAME
        self.crash_at = crash_at
        #: What is changed right now (for the exit hook: a daemon thread, such as the
        #: embedded worker of ``tuner serve``, is stopped at exit without its finally).
        self.in_force: list[Entry] = []
        _LIVE.add(self)

    # --- the change ---------------------------------------------------------------------
    @contextlib.contextmanager
    def changed(self, settings: Sequence[SystemSetting]) -> Iterator[None]:
        """Inside, ``settings`` are in force; outside, the machine is as it was (or
        ``SystemStateError`` says what is not). Raises ``CannotApply`` (nothing left
        changed) when a setting cannot be read or written, or the journal written."""
        if not settings:
            yield
            return
        with self._lock(wait=True):
            self._heal()
            entries: list[Entry] = []
            try:
                # a signal held back here arrives when the block ends: inside the try, so
                # the finally below puts everything back
                with held_signals():
                    entries = self._old_values(settings)
                    self._crash("before_journal")
                    try:
                        self._write(entries)
                    except CannotApply:
                        entries = []
                        raise
                    except OSError as exc:
                        entries = []
                        raise CannotApply(f"cannot write the system-settings journal "
                                          f"{self.path}: {exc}; nothing was changed") from exc
                    self._crash("after_journal")
                    written: set[tuple[str, int | None]] = set()
                    try:
                        for setting in settings:
                            apply_setting(setting)
                            written.add(setting.place)
                    except OSError as exc:
                        # put back what was written; the place that refused is unchanged
                        pending, entries = entries, []
                        self._restore([e for e in pending if (e.path, e.msr) in written])
                        raise CannotApply(f"cannot apply {setting.knob} ({setting.describe()}):"
                                          f" {exc}; everything changed so far is restored"
                                          ) from exc
                    self._crash("after_change")
                    self.in_force = entries
                yield
            finally:
                self.in_force = []
                if entries:
                    with held_signals():
                        self._restore(entries)

    def _heal(self) -> None:
        """A journal left by a dead tuner (another worker on this host, SIGKILLed while this
        one ran) is put back before a new change, so the new journal holds the machine's
        true values; one that cannot be put back stops the change (``CannotApply``)."""
        if not self.path.exists():
            return
        try:
            recovery = self._recover_locked()
        except (OSError, SystemStateError) as exc:
            raise CannotApply(f"a system-settings journal left by an earlier tuner in "
                              f"{self.path} could not be restored ({exc}); run `tuner "
                              "restore`; nothing was changed") from exc
        if recovery is not None:
            logger.warning("%s", recovery.message())

    def _old_values(self, settings: Sequence[SystemSetting]) -> list[Entry]:
        by_place: dict[tuple[str, int | None], tuple[SystemSetting, list[str]]] = {}
        for setting in settings:  # one old value per place: its first setting reads it
            _, knobs = by_place.setdefault(setting.place, (setting, []))
            if setting.knob not in knobs:
                knobs.append(setting.knob)
        entries = []
        for setting, knobs in by_place.values():
            try:
                old = read_current(setting)
            except OSError as exc:
                raise CannotApply(f"cannot read {setting.path} for {setting.knob}: {exc}; "
                                  "nothing was changed") from exc
            entries.append(Entry(path=setting.path, form=setting.form, msr=setting.msr,
                                 old=old, knobs=tuple(knobs)))
        return entries

    # --- the file -----------------------------------------------------------------------
    def _write(self, entries: Sequence[Entry]) -> None:
        if self.path.exists():  # never over a left-over journal: it holds the true old values
            raise CannotApply(f"a system-settings journal left by an earlier tuner is still "
                              f"in {self.path}: run `tuner restore` first; nothing was changed")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {"version": 1, "pid": os.getpid(), "boot_id": boot_id(),
                  "created": time.time(), "entries": [e.to_dict() for e in entries]}
        temporary = self.path.with_name(f"{JOURNAL_NAME}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(record, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_directory(self.directory)

    def _clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _fsync_directory(self.directory)

    def read(self) -> tuple[dict[str, Any], list[Entry]] | None:
        """The journal left on disk (its record and entries), or None.

        Restoring writes the journal's values to the journal's paths as whoever runs tuner
        (root, for system knobs): a journal someone else could have written would let them
        choose both. So it must be owned by this user and writable by no one else, and
        every path must be a system file (under ``sys``, ``proc/sys`` or ``dev/cpu``)."""
        try:
            status = self.path.stat()
            record = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SystemStateError(f"the system-settings journal {self.path} cannot be read "
                                   f"({exc}); check the settings it names by hand, then "
                                   f"remove it") from exc
        if status.st_uid != os.geteuid() or status.st_mode & 0o022:
            raise SystemStateError(
                f"the system-settings journal {self.path} is not this user's own file "
                f"(owner uid {status.st_uid}, mode {status.st_mode & 0o777:o}): refusing to "
                "restore from it; check the settings it names by hand, then remove it")
        try:
            entries = [Entry.from_dict(e) for e in record.get("entries", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemStateError(f"the system-settings journal {self.path} is malformed "
                                   f"({exc}); check the settings it names by hand") from exc
        strange = [e.path for e in entries if not system_place(e.path)]
        if strange:
            raise SystemStateError(
                f"the system-settings journal {self.path} names files that are not system "
                f"settings ({', '.join(strange[:3])}): refusing to restore from it")
        return record, entries

    # --- putting back -------------------------------------------------------------------
    def _restore(self, entries: Sequence[Entry]) -> None:
        failed: list[tuple[Entry, OSError]] = []
        for index, entry in enumerate(reversed(entries)):
            try:
                restore_value(entry.path, entry.form, entry.msr, entry.old)
            except OSError as exc:
                failed.append((entry, exc))
            if index == 0:
                self._crash("mid_restore")
        still: list[tuple[Entry, OSError]] = []
        for entry, _ in failed:  # a second pass: some writes wait on another's old value
            try:
                restore_value(entry.path, entry.form, entry.msr, entry.old)
            except OSError as exc:
                still.append((entry, exc))
        if still:
            problems = "; ".join(f"{e.describe()}: {exc}" for e, exc in still)
            raise SystemStateError(
                f"could not restore {len(still)} system setting(s): {problems}. The journal "
                f"{self.path} is kept: fix the cause and run `tuner restore`")
        self._clear()

    def recover(self) -> Recovery | None:
        """Put back a journal whose owner is gone (see the module docstring); None when
        there is none, or its owner is still running."""
        if not self.path.exists():
            return None
        with self._lock(wait=False) as got:
            return self._recover_locked() if got else None

    def _recover_locked(self) -> Recovery | None:
        """With the journal lock held, a journal on disk is a dead owner's: put it back."""
        found = self.read()
        if found is None:
            return None
        record, entries = found
        pid = int(record.get("pid", 0))
        if record.get("boot_id") and boot_id() and record["boot_id"] != boot_id():
            self._clear()
            return Recovery(entries=tuple(entries), pid=pid, discarded=True)
        with held_signals():
            self._restore(entries)
        return Recovery(entries=tuple(entries), pid=pid)

    # --- helpers ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, *, wait: bool) -> Iterator[bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _crash(self, point: str) -> None:
        if self.crash_at == point:
            logger.warning("TUNER_TEST_CRASH_AT=%s: killing this process", point)
            os.kill(os.getpid(), signal.SIGKILL)


_LIVE: weakref.WeakSet[Journal] = weakref.WeakSet()


@atexit.register
def _restore_at_exit() -> None:
    """Put back changes still in force when the interpreter exits (their thread was a daemon
    stopped mid-run); a failure leaves the journal for the next start."""
    for journal in list(_LIVE):
        entries, journal.in_force = journal.in_force, []
        if entries:
            try:
                journal._restore(entries)
            except (OSError, SystemStateError) as exc:
                logger.error("system settings left changed at exit: %s", exc)
