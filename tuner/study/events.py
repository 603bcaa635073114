"""What a study run tells whoever watches it: the event sink. ``Progress`` draws it on a
terminal (``tuner tune``); ``Silent`` ignores it (workers, benchmarks, tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

#: Where a phase writes a line for people (``RunEvents.note``).
Say = Callable[[str], None]


def ignore(text: str) -> None:
    """A ``Say`` that tells nobody."""


class RunEvents(Protocol):
    """Called in this order: ``resume`` once, then for each trial ``trial_started`` and
    ``trial_finished``, ``note`` for lines outside trials (noise, screening,
    confirmation), and ``close`` once at the end."""

    def resume(self, done: int, best: float | None, defaults: float | None) -> None: ...

    def trial_started(self, number: int, role: str, values: dict[str, Any]) -> None: ...

    def trial_finished(self, number: int, state: str, value: float | None, role: str,
                       reason: str = "") -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


class Silent:
    """An event sink that tells nobody."""

    def resume(self, done: int, best: float | None, defaults: float | None) -> None:
        pass

    def trial_started(self, number: int, role: str, values: dict[str, Any]) -> None:
        pass

    def trial_finished(self, number: int, state: str, value: float | None, role: str,
                       reason: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
