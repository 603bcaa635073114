"""The one exception family of tuner. Expected failures of a workload are *data* (an
``Outcome``), never exceptions; these are for bad input and broken environments, and are
translated at the edges only (the CLI prints one line and exits non-zero, the API maps
them to HTTP status codes)."""

from __future__ import annotations

from dataclasses import dataclass


class TunerError(Exception):
    """Base of every error tuner raises on purpose."""


@dataclass(frozen=True, kw_only=True)
class SpecIssue:
    """One problem in a study file: where it is and what was expected."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class SpecError(TunerError):
    """A study file (or submitted body) that does not validate; carries every issue found."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class HostError(TunerError):
    """The host cannot be probed, or cannot do what was asked of it."""


class StorageError(TunerError):
    """The study database is unreachable or holds something unexpected."""


class StudyConflictError(TunerError):
    """A study of that name exists with a different, incompatible definition."""


class NotFoundError(TunerError):
    """A study (or trial) that does not exist."""


class SystemStateError(HostError):
    """A system setting could not be put back: the machine is left changed, and the journal
    that says how to restore it is kept (``tuner restore`` tries again)."""
