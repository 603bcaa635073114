"""The system-settings journal and the backend that uses it, on plain files standing in for
sysfs (the real THP/NUMA-balancing files: tests/test_system_real.py; every hardware knob
against fake roots: tests/test_system_knobs_fake_root.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tuner.errors import SystemStateError
from tuner.execution.backend import Backend
from tuner.execution.host_lock import HostLock, LockedBackend
from tuner.execution.launch import Launch
from tuner.execution.outcome import OnReading, Outcome, Status
from tuner.execution.runner import RunRequest
from tuner.execution.system_backend import SystemBackend
from tuner.execution.system_journal import CannotApply, Journal
from tuner.execution.system_settings import SystemSetting
from tuner.host import probe_host


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    # laid out as system files are (a journal names nothing else)
    thp = tmp_path / "sys" / "enabled"
    swap = tmp_path / "proc" / "sys" / "swappiness"
    swap.parent.mkdir(parents=True)
    thp.parent.mkdir(parents=True, exist_ok=True)
    thp.write_text("always [madvise] never\n")
    swap.write_text("60\n")
    return {"thp": thp, "swap": swap}


def settings_for(files: dict[str, Path]) -> list[SystemSetting]:
    return [SystemSetting(knob="thp_enabled", path=str(files["thp"]), value="never",
                          form="selected"),
            SystemSetting(knob="swappiness", path=str(files["swap"]), value="10")]


def test_changed_writes_the_journal_first_and_restores_after(tmp_path: Path,
                                                             files: dict[str, Path]) -> None:
    journal = Journal(tmp_path / "state")
    with journal.changed(settings_for(files)):
        assert files["thp"].read_text().strip() == "never"
        assert files["swap"].read_text().strip() == "10"
        record = json.loads(journal.path.read_text())
        assert {e["path"]: e["old"] for e in record["entries"]} == {
            str(files["thp"]): "madvise", str(files["swap"]): "60"}
        assert record["pid"] == os.getpid() and record["boot_id"]
    assert files["thp"].read_text().strip() == "madvise"
    assert files["swap"].read_text().strip() == "60"
    assert not journal.path.exists()


def test_restored_when_the_run_raises(tmp_path: Path, files: dict[str, Path]) -> None:
    journal = Journal(tmp_path / "state")
    with pytest.raises(KeyboardInterrupt), journal.changed(settings_for(files)):
        raise KeyboardInterrupt
    assert files["swap"].read_text().strip() == "60"
    assert not journal.path.exists()


def test_a_setting_that_cannot_be_written_puts_back_the_others(
        tmp_path: Path, files: dict[str, Path]) -> None:
    missing = SystemSetting(knob="swappiness", path=str(tmp_path / "nowhere" / "x"), value="1")
    journal = Journal(tmp_path / "state")
    with pytest.raises(CannotApply, match="cannot read .*nowhere"), \
            journal.changed([settings_for(files)[0], missing]):
        pass
    # /proc/version reads but takes no write, even from root: the first setting, already
    # written, is put back
    blocked = SystemSetting(knob="swappiness", path="/proc/version", value="1")
    with pytest.raises(CannotApply, match="cannot apply swappiness.*restored"):
        with journal.changed([settings_for(files)[0], blocked]):
            pass
    assert files["thp"].read_text().strip() == "madvise"  # written back (a plain file here)
    assert not journal.path.exists()


def test_a_failed_restore_is_loud_and_keeps_the_journal(tmp_path: Path,
                                                        files: dict[str, Path]) -> None:
    journal = Journal(tmp_path / "state")
    with pytest.raises(SystemStateError, match="tuner restore"):
        with journal.changed(settings_for(files)):
            files["swap"].unlink()
            files["swap"].mkdir()  # the restore cannot write a directory
    assert journal.path.exists()
    files["swap"].rmdir()
    files["swap"].write_text("10\n")
    recovery = journal.recover()
    assert recovery is not None and "restored 2" in recovery.message()
    assert files["swap"].read_text().strip() == "60" and not journal.path.exists()


def test_a_new_change_first_puts_back_a_left_over_journal(
        tmp_path: Path, files: dict[str, Path]) -> None:
    """Another worker on this host was SIGKILLed with swappiness at 60 and the machine's
    true value, 33, in its journal: the next change puts 33 back first, so its own journal
    holds 33 and the machine ends at 33, not at the dead worker's 60."""
    journal = Journal(tmp_path / "state")
    journal.directory.mkdir()
    journal.path.write_text(json.dumps({"pid": 1, "entries": [
        {"path": str(files["swap"]), "form": "text", "msr": None, "old": "33",
         "knobs": ["swappiness"]}]}))
    journal.path.chmod(0o600)
    with journal.changed(settings_for(files)):
        assert files["swap"].read_text().strip() == "10"
        old = {e["path"]: e["old"] for e in json.loads(journal.path.read_text())["entries"]}
        assert old[str(files["swap"])] == "33"
    assert files["swap"].read_text().strip() == "33" and not journal.path.exists()
    # one that cannot be trusted is not put back, and nothing is changed
    planted(journal, "/etc/passwd")
    with pytest.raises(CannotApply, match="tuner restore"), journal.changed(settings_for(files)):
        pass
    assert files["swap"].read_text().strip() == "33"
    assert json.loads(journal.path.read_text())["entries"][0]["path"] == "/etc/passwd"


CRASHER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from tuner.execution.system_journal import Journal
    from tuner.execution.system_settings import SystemSetting
    state, path, hold = sys.argv[1], sys.argv[2], sys.argv[3]
    journal = Journal(Path(state))
    with journal.changed([SystemSetting(knob="swappiness", path=path, value="10")]):
        print("changed", flush=True)
        if hold == "hold":
            sys.stdin.readline()
        os.kill(os.getpid(), 9)
""")


def test_recover_restores_a_journal_whose_owner_died(tmp_path: Path,
                                                     files: dict[str, Path]) -> None:
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-c", CRASHER, str(state), str(files["swap"]),
                           "die"], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert files["swap"].read_text().strip() == "10"  # left changed
    recovery = Journal(state).recover()
    assert recovery is not None and recovery.pid > 0 and not recovery.discarded
    assert "swappiness" in recovery.message()
    assert files["swap"].read_text().strip() == "60"
    assert Journal(state).recover() is None  # nothing left


def test_recover_leaves_a_live_owners_journal_alone(tmp_path: Path,
                                                    files: dict[str, Path]) -> None:
    state = tmp_path / "state"
    owner = subprocess.Popen([sys.executable, "-c", CRASHER, str(state), str(files["swap"]),
                              "hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "changed"
        assert Journal(state).recover() is None  # its owner holds the journal lock
        assert files["swap"].read_text().strip() == "10"
    finally:
        assert owner.stdin is not None
        owner.stdin.write("\n")
        owner.stdin.flush()
        owner.wait(timeout=30)
    assert Journal(state).recover() is not None
    assert files["swap"].read_text().strip() == "60"


def test_a_journal_from_before_a_reboot_is_discarded(tmp_path: Path,
                                                     files: dict[str, Path]) -> None:
    journal = Journal(tmp_path / "state")
    journal.directory.mkdir()
    journal.path.write_text(json.dumps({"pid": 7, "boot_id": "an-earlier-boot", "entries": [
        {"path": str(files["swap"]), "form": "text", "msr": None, "old": "33",
         "knobs": ["swappiness"]}]}))
    recovery = journal.recover()
    assert recovery is not None and recovery.discarded and "reboot" in recovery.message()
    assert files["swap"].read_text().strip() == "60" and not journal.path.exists()


def test_an_unreadable_journal_is_an_error_that_names_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    journal.directory.mkdir()
    journal.path.write_text("{ not json")
    with pytest.raises(SystemStateError, match="system-journal.json"):
        journal.recover()


SIGNALLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tuner.cli.entry import _terminate
    import signal
    signal.signal(signal.SIGTERM, _terminate)
    from tuner.execution.system_journal import Journal
    from tuner.execution.system_settings import SystemSetting
    journal = Journal(Path(sys.argv[1]), crash_at=None)
    with journal.changed([SystemSetting(knob="swappiness", path=sys.argv[2], value="10")]):
        print("changed", flush=True)
        time.sleep(60)
""")


def test_sigterm_during_the_run_restores(tmp_path: Path, files: dict[str, Path]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SIGNALLED, str(tmp_path / "state"),
                             str(files["swap"])], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "changed"
    assert files["swap"].read_text().strip() == "10"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert files["swap"].read_text().strip() == "60"
    assert not (tmp_path / "state" / "system-journal.json").exists()


class Waiting(Backend):
    """Runs until told to stop, noting what the file held meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []

    def run(self, request: RunRequest, on_reading: OnReading | None) -> Outcome:
        self.seen.append(self.path.read_text().strip())
        self.started.set()
        self.release.wait(30)
        return Outcome(status=Status.OK, reason="", metrics={"throughput": 1.0})


def request(launch: Launch) -> RunRequest:
    return RunRequest(launch=launch, metric="throughput", timeout=30, base_env={})


def test_the_backend_holds_every_node_lock_while_the_machine_is_changed(
        tmp_path: Path, files: dict[str, Path]) -> None:
    host = probe_host()
    lock = HostLock(host, tmp_path / "locks")
    inner = Waiting(files["swap"])
    backend = SystemBackend(LockedBackend(inner, lock), lock=lock,
                            journal=Journal(tmp_path / "state"))
    launch = Launch(argv=("x",), cpus=(0,), system=tuple(settings_for(files)))
    outcomes: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(backend.run(request(launch), None)))
    worker.start()
    assert inner.started.wait(30)
    assert inner.seen == ["10"]
    # a pinned trial elsewhere (another process) waits for the change to end
    probe = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from tuner.execution.host_lock import HostLock
        from tuner.host import probe_host
        with HostLock(probe_host(), Path({str(tmp_path / 'locks')!r})).hold([0]):
            print(time.time(), flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    released = time.time()
    inner.release.set()
    worker.join(30)
    out, _ = probe.communicate(timeout=30)
    assert float(out) >= released  # it got the lock only after the change was undone
    assert outcomes[0].ok and files["swap"].read_text().strip() == "60"


def test_the_backend_fails_the_run_when_a_setting_cannot_be_applied(
        tmp_path: Path, files: dict[str, Path]) -> None:
    inner = Waiting(files["swap"])
    inner.release.set()
    backend = SystemBackend(inner, lock=HostLock(probe_host(), tmp_path / "locks"),
                            journal=Journal(tmp_path / "state"))
    bad = SystemSetting(knob="swappiness", path=str(tmp_path / "missing"), value="1")
    outcome = backend.run(request(Launch(argv=("x",), system=(bad,))), None)
    assert outcome.status is Status.FAILED and "missing" in outcome.reason
    assert inner.seen == []  # never ran
    plain = backend.run(request(Launch(argv=("x",))), None)  # no system settings: no journal
    assert plain.ok and inner.seen == ["60"]


def test_launch_keeps_its_system_settings_through_storage(files: dict[str, Path]) -> None:
    launch = Launch(argv=("x",), system=tuple(settings_for(files)))
    again = Launch.from_dict(json.loads(json.dumps(launch.to_dict())))
    assert again.system == launch.system
    assert "system" not in Launch(argv=("x",)).to_dict()
    lines = launch.system_lines()
    assert lines == [f"# thp_enabled: echo never > {files['thp']}",
                     f"# swappiness: echo 10 > {files['swap']}"]


DAEMON = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from tuner.execution.system_journal import Journal
    from tuner.execution.system_settings import SystemSetting
    journal = Journal(Path(sys.argv[1]))
    changed = threading.Event()

    def run() -> None:
        with journal.changed([SystemSetting(knob="swappiness", path=sys.argv[2], value="10")]):
            changed.set()
            time.sleep(60)

    threading.Thread(target=run, daemon=True).start()
    changed.wait(30)
    print(open(sys.argv[2]).read().strip(), flush=True)
""")


def test_a_daemon_thread_stopped_at_exit_has_its_change_put_back(
        tmp_path: Path, files: dict[str, Path]) -> None:
    """``tuner serve``'s embedded worker is a daemon thread: the process may exit mid-run."""
    done = subprocess.run([sys.executable, "-c", DAEMON, str(tmp_path / "state"),
                           str(files["swap"])], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10"  # it was changed while the thread ran
    assert files["swap"].read_text().strip() == "60"
    assert not (tmp_path / "state" / "system-journal.json").exists()


def test_plain_backends_refuse_system_settings_nobody_applied(files: dict[str, Path]) -> None:
    from tuner.execution.backend import ProcessBackend
    from tuner.execution.forkserver import ForkServerBackend

    launch = Launch(argv=(sys.executable, "-c", "print('FINAL throughput=1')"),
                    system=tuple(settings_for(files)))
    fork = ForkServerBackend(preload=())
    try:
        for backend in (ProcessBackend(), fork):
            outcome = backend.run(request(launch), None)
            assert outcome.status is Status.FAILED
            assert "not run through the system backend" in outcome.reason
    finally:
        fork.close()
    assert files["swap"].read_text().strip() == "60"


def planted(journal: Journal, path: str, old: str = "33") -> None:
    journal.directory.mkdir(exist_ok=True)
    journal.path.write_text(json.dumps({"pid": 1, "entries": [
        {"path": path, "form": "text", "msr": None, "old": old, "knobs": ["swappiness"]}]}))
    journal.path.chmod(0o600)


def test_a_journal_someone_else_could_write_is_never_restored(
        tmp_path: Path, files: dict[str, Path]) -> None:
    """Restoring writes the journal's values to its paths as root: a journal planted by
    another user (or writable by one), or naming a file that is not a system setting, would
    choose both. Each is refused, loudly, and nothing is written."""
    victim = tmp_path / "etc" / "passwd"
    victim.parent.mkdir()
    victim.write_text("root:x:0:0\n")
    journal = Journal(tmp_path / "state")
    planted(journal, str(victim), old="evil")
    with pytest.raises(SystemStateError, match="not system settings"):
        journal.recover()
    sneaky = str(tmp_path / "sys" / ".." / "etc" / "passwd")  # resolved before the check
    planted(journal, sneaky, old="evil")
    with pytest.raises(SystemStateError, match="not system settings"):
        journal.recover()
    assert victim.read_text() == "root:x:0:0\n"
    planted(journal, str(files["swap"]))
    journal.path.chmod(0o666)
    with pytest.raises(SystemStateError, match="not this user's own file"):
        journal.recover()
    journal.path.chmod(0o600)
    if os.geteuid() == 0:  # only root can give the file away
        os.chown(journal.path, 1000, 1000)
        with pytest.raises(SystemStateError, match="owner uid 1000"):
            journal.recover()
        os.chown(journal.path, 0, 0)
    assert files["swap"].read_text().strip() == "60"
    assert journal.recover() is not None and files["swap"].read_text().strip() == "33"
