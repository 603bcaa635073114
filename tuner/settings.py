"""Settings of tuner itself. The only module that reads tuner's own environment.

Knobs write the *child's* environment and never read ``os.environ``; every trial starts
from ``child_base_environment()``, which is tuner's environment with every variable a
knob controls removed, so that "framework defaults" really means defaults and not whatever
the user's shell happened to export, and with every secret of the service removed (a trial
runs code the service does not vouch for: it never sees a token).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``TUNER_*`` environment variables (or a ``.env`` file) override these defaults."""

    model_config = SettingsConfigDict(env_prefix="TUNER_", env_file=".env", extra="ignore")

    #: Where studies are stored when a study file names no storage.
    default_storage: str = "sqlite:///tuner.db"
    #: Where ``tuner tune`` writes the best settings of each study.
    output_dir: Path = Path("tuner-out")
    #: GitHub Actions' job summary file: ``tuner ci`` appends its Markdown report to it
    #: (read from ``GITHUB_STEP_SUMMARY``, the variable Actions sets, not ``TUNER_*``).
    github_step_summary: Path | None = Field(default=None,
                                             validation_alias="GITHUB_STEP_SUMMARY")
    #: Cache of slow host facts (the oneDNN version probe).
    cache_dir: Path = Path.home() / ".cache" / "tuner"
    #: Where ``tuner runtime create NAME`` makes named Python runtimes (virtual environments
    #: with their framework build; ``workload.python: NAME`` runs a built-in in one).
    runtimes_dir: Path = Path.home() / ".local" / "share" / "tuner" / "runtimes"
    #: Root of /sys and /proc for the host probe (tests point it at a fake tree).
    sys_root: Path = Path("/")
    #: Lines of a trial's output kept for the study database.
    output_tail_lines: int = 40
    #: Seconds a workload gets to exit after SIGTERM before SIGKILL.
    kill_grace_seconds: float = 3.0
    #: Seconds between heartbeats of a running trial, and the silence after which another
    #: process declares the trial abandoned, fails it and retries it.
    heartbeat_interval: int = 10
    heartbeat_grace: int = 60
    #: Seconds to wait for the database server before giving up with a clear error.
    db_connect_timeout: int = 5
    #: Where workers keep the host lock files (one worker measures per machine / NUMA node).
    lock_dir: Path = Path("/tmp/tuner-locks")
    #: Where the system-settings journal lives (the old value of every system setting a
    #: running trial changed): one per host, so every tuner on the host must agree on it.
    state_dir: Path = Field(default_factory=lambda: _default_state_dir())
    #: The system knobs this host lets studies change: ``all``, ``none``, or a comma list
    #: of knob names. On the service, ``none`` also refuses every study that names one.
    system_knobs: str = "all"
    #: Tests only: kill this process with SIGKILL at a named point of a system change
    #: (``tuner.execution.system_journal.CRASH_POINTS``) to prove the restore at each one.
    test_crash_at: str | None = None
    #: Seconds a worker sleeps when no study needs it.
    worker_poll_seconds: float = 5.0
    #: Seconds after which a screening/confirmation claim of a silent worker may be taken.
    claim_timeout: float = 3600.0
    #: The service's bearer tokens: ``api_token`` for writes (studies of built-in workloads),
    #: ``admin_token`` also for studies that run an arbitrary command on the workers,
    #: ``read_token`` (optional) to protect reads; with ``protect_reads`` any of the tokens
    #: is needed to read.
    api_token: str = ""
    admin_token: str = ""
    read_token: str = ""
    protect_reads: bool = False
    #: Largest request body the service accepts, in bytes (413 above it); a study file is a
    #: few kilobytes.
    max_body_bytes: int = 1_000_000

    def system_knob_allowed(self, name: str) -> bool:
        """Whether ``system_knobs`` lets studies change the system knob ``name`` here."""
        policy = self.system_knobs.strip().lower()
        if policy == "all":
            return True
        if policy in ("none", ""):
            return False
        return name.lower() in {n.strip().lower() for n in policy.split(",")}

    def secrets(self) -> tuple[str, ...]:
        """The tokens (those set): what a trial's environment must never hold."""
        return tuple(t for t in (self.api_token, self.admin_token, self.read_token) if t)


def _default_state_dir() -> Path:
    """``/var/lib/tuner`` for root (system knobs need root), else the user's state dir."""
    if os.geteuid() == 0:
        return Path("/var/lib/tuner")
    return Path.home() / ".local" / "state" / "tuner"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


#: Variables of tuner's environment that a trial never inherits: tuner's own settings
#: (``TUNER_*``: tokens, storage URLs), database passwords and credentials files, and any
#: variable whose name says it holds a secret.
SECRET_PREFIXES = ("TUNER_",)
SECRET_NAMES = frozenset({"PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE", "PGSSLKEY",
                          "MYSQL_PWD", "DATABASE_URL", "OPTUNA_STORAGE"})
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "CREDENTIAL",
                "PRIVATE_KEY", "ACCESS_KEY")


def _secret(name: str, value: str, secrets: Iterable[str]) -> bool:
    upper = name.upper()
    return (upper.startswith(SECRET_PREFIXES) or upper in SECRET_NAMES
            or any(word in upper for word in SECRET_WORDS)
            or any(secret in value if len(secret) >= 8 else secret == value
                   for secret in secrets))


def child_base_environment(controlled: Iterable[str],
                           secrets: Iterable[str] = ()) -> dict[str, str]:
    """tuner's own environment minus the variables knobs control and every secret of the
    service (see ``SECRET_*``; also any variable whose value holds one of the tokens, here
    or in ``secrets``), plus unbuffered output."""
    drop = set(controlled)
    settings = get_settings()
    known = [t for t in (*settings.secrets(), *secrets) if t]
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not _secret(k, v, known)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def conceal_secrets(settings: Settings) -> None:
    """Hide this process's secrets from the trials it starts (call once settings are read,
    in long-lived processes that run trials: ``tuner serve`` and ``tuner worker``).

    A trial runs as the same user, so it could read ``/proc/PARENT/environ``, which shows
    the process's original environment block. Each secret variable (see ``SECRET_*``) is
    set again (``setenv`` copies it to the heap, so ``getenv``, libpq's included, still
    finds it, and ``os.environ`` is left alone), then its value in the original block is
    overwritten with NUL bytes; and the process is made non-dumpable, so that processes of
    the same user without CAP_SYS_PTRACE cannot read its memory or its ``/proc`` files.
    Linux only; elsewhere it does nothing.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    except (OSError, ValueError):
        return
    known = settings.secrets()
    secret: list[tuple[int, bytes, bytes]] = []
    index = 0
    while environ[index]:
        address = environ[index]
        assert address is not None
        name, sep, value = ctypes.string_at(address).partition(b"=")
        if sep and value and _secret(name.decode(errors="replace"),
                                     value.decode(errors="replace"), known):
            secret.append((address, name, value))
        index += 1
    for address, name, value in secret:
        if libc.setenv(name, value, 1) == 0:  # a heap copy first; then the original goes
            ctypes.memset(address + len(name) + 1, 0, len(value))
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
