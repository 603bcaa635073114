"""One read of a study's state for a short stretch of work.

Starting a trial reads the study over and over: the budget check counts its trials, the
duplicate check lists the configurations taken, the sampler reads the finished trials
(for the relative search space, then for the sample), the knobs screening left out and the
abandoned trials are study attributes. On a study database each read is a round trip (on
PostgreSQL a network one): about ten per trial where two would do.

Inside ``reading_once(study)`` the first read of the study's user attributes, and the first
of its trial list, are kept and reused by ``study_attrs`` and ``trials`` (and by every
``Attr.get`` on the study, through ``tuner.store.access``); a write of a study attribute
through tuner's accessors drops the kept attributes. A block sees the study as it was at its
first read: what other workers write meanwhile shows at the next block, as it would have a
moment later anyway. Blocks are per thread (a context variable), so workers in threads of
one process each keep their own.

A block opened with ``hand_over=True`` (the ask) passes what it read to the next block on
the same study in the same thread if that one opens within ``HAND_OVER_SECONDS`` (the
trial's start, right after its ask): the trial then starts from the very state its
configuration was proposed in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Container, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.goal import Goal

#: How long a handed-over read stays good for the next block.
HAND_OVER_SECONDS = 1.0


@dataclass
class _Kept:
    key: tuple[int, int]
    attrs: Mapping[str, Any] | None = None
    trials: list[FrozenTrial] | None = None
    at: float = 0.0


_KEPT: ContextVar[_Kept | None] = ContextVar("tuner_study_reads", default=None)
_HANDED: ContextVar[_Kept | None] = ContextVar("tuner_study_reads_handed", default=None)


def _key(study: Any) -> tuple[int, int]:
    return id(study._storage), int(study._study_id)


def is_study(source: object) -> bool:
    """A study (or a view of one), as opposed to a trial or a plain mapping."""
    return hasattr(source, "_study_id") and hasattr(source, "_storage")


def _kept_for(study: Any) -> _Kept | None:
    kept = _KEPT.get()
    return kept if kept is not None and kept.key == _key(study) else None


@contextlib.contextmanager
def reading_once(study: optuna.Study, *, hand_over: bool = False) -> Iterator[None]:
    """Within the block, ``study``'s user attributes and trial list are read at most once
    (or not at all, when the block before handed its reads over)."""
    key = _key(study)
    handed = _HANDED.get()
    _HANDED.set(None)
    fresh = handed is not None and handed.key == key and \
        time.monotonic() - handed.at <= HAND_OVER_SECONDS
    kept = handed if fresh and handed is not None else _Kept(key=key)
    token = _KEPT.set(kept)
    try:
        yield
    finally:
        _KEPT.reset(token)
        if hand_over:
            kept.at = time.monotonic()
            _HANDED.set(kept)


def study_attrs(study: Any) -> Mapping[str, Any]:
    """``study.user_attrs``, read once per ``reading_once`` block."""
    kept = _kept_for(study)
    if kept is None:
        return study.user_attrs  # type: ignore[no-any-return]
    if kept.attrs is None:
        kept.attrs = study.user_attrs
    return kept.attrs


def trials(study: Any, states: Container[TrialState] | None = None, *,
           use_cache: bool = False) -> list[FrozenTrial]:
    """``study.get_trials(deepcopy=False, states=states)``, the list read once per block
    (the trials are shared: do not change them). Outside a block, ``use_cache`` is
    Optuna's own (the study's list, kept from one ask to the next tell)."""
    kept = _kept_for(study)
    if kept is None:
        return study._get_trials(  # type: ignore[no-any-return]
            deepcopy=False, states=states, use_cache=use_cache)
    if kept.trials is None:
        kept.trials = study._get_trials(deepcopy=False, states=None)
    if states is None:
        return list(kept.trials)
    return [t for t in kept.trials if t.state in states]


def best_value(study: Any) -> float:
    """``study.best_value``: from the kept trial list inside a block (the best as of the
    block's read: what other workers finish meanwhile shows at the next block), else read.
    Raises ValueError when no trial completed, as Optuna does."""
    kept = _kept_for(study)
    if kept is None or kept.trials is None:
        return float(study.best_value)
    values = [float(t.value) for t in kept.trials
              if t.state == TrialState.COMPLETE and t.value is not None]
    if not values:
        raise ValueError("no trial completed")
    return Goal.of(study.direction).best(values)


def forget_attrs(study: Any) -> None:
    """A study attribute was written: the next read in this block reads anew."""
    kept = _kept_for(study)
    if kept is not None:
        kept.attrs = None
