"""How one attribute is read and written: ``Attr`` (a user attribute of a study or a
trial), ``Family`` (``<prefix><name>`` study attributes, one per job or trial) and
``SystemAttr`` (a trial system attribute), with the loaders that type what was stored.
Which attributes there are is ``tuner.store.attributes``: the only module that spells a key.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from tuner.store import records, snapshot
from tuner.store.values import Run

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

T = TypeVar("T")


class Scope(enum.Enum):
    STUDY = "study user attribute"
    TRIAL = "trial user attribute"
    TRIAL_SYSTEM = "trial system attribute"


class Holder(Protocol):
    """A study, a trial (running or frozen), a study summary: anything with user attributes."""

    @property
    def user_attrs(self) -> Mapping[str, Any]: ...


class Target(Holder, Protocol):
    """A study or a trial whose user attributes can be written."""

    def set_user_attr(self, key: str, value: Any) -> None: ...


class SystemHolder(Protocol):
    @property
    def system_attrs(self) -> Mapping[str, Any]: ...


#: Where a reader finds the attributes: the holder, or its ``user_attrs`` read once.
Source = Holder | Mapping[str, Any]


def attrs_of(source: Source) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    return snapshot.study_attrs(source) if snapshot.is_study(source) else source.user_attrs


def written(target: Target) -> None:
    """After a write to ``target``: a study's kept attributes are read anew."""
    if snapshot.is_study(target):
        snapshot.forget_attrs(target)


def same(value: Any) -> Any:
    return value


def to_dict(value: Any) -> Any:
    return value.to_dict()


@dataclass(frozen=True, kw_only=True)
class Attr(Generic[T]):
    """One user attribute: ``get`` reads it typed (``default`` when absent or null),
    ``put`` writes it (in parts when ``parts`` and its text is large)."""

    key: str
    scope: Scope
    kind: str
    writer: str
    meaning: str
    load: Callable[[Any], T]
    default: T
    dump: Callable[[T], Any] = same
    parts: bool = False

    def raw(self, source: Source) -> Any:
        """The stored JSON (parts reassembled), or None."""
        attrs = attrs_of(source)
        return records.get(attrs, self.key) if self.parts else attrs.get(self.key)

    def get(self, source: Source) -> T:
        raw = self.raw(source)
        return copy.copy(self.default) if raw is None else self.load(raw)

    def present(self, source: Source) -> bool:
        return self.key in attrs_of(source)

    def put(self, target: Target, value: T) -> None:
        data = self.dump(value)
        if self.parts:  # a rewrite of a value in parts takes the next version of the parts
            records.put(target.set_user_attr, self.key, data, target.user_attrs)
        else:
            target.set_user_attr(self.key, data)
        written(target)

    def entry(self, value: T) -> dict[str, Any]:
        """``{key: stored value}``, for ``optuna.trial.create_trial(user_attrs=...)``."""
        if self.parts:
            raise ValueError(f"{self.key} may be stored in parts: write it with put")
        return {self.key: self.dump(value)}


@dataclass(frozen=True, kw_only=True)
class Family(Generic[T]):
    """A family of study attributes, one per job or trial: ``<prefix><name>``."""

    prefix: str
    scope: Scope
    kind: str
    writer: str
    meaning: str
    load: Callable[[Any], T]
    dump: Callable[[T], Any] = same

    def key(self, name: object) -> str:
        return f"{self.prefix}{name}"

    def get(self, source: Source, name: object) -> T | None:
        raw = attrs_of(source).get(self.key(name))
        return None if raw is None else self.load(raw)

    def put(self, target: Target, name: object, value: T) -> None:
        target.set_user_attr(self.key(name), self.dump(value))
        written(target)

    def items(self, source: Source) -> dict[str, T]:
        """Every member, by name (the key without the prefix)."""
        return {key[len(self.prefix):]: self.load(value)
                for key, value in attrs_of(source).items() if key.startswith(self.prefix)}


@dataclass(frozen=True, kw_only=True)
class SystemAttr(Generic[T]):
    """One trial system attribute (written with ``create_trial(system_attrs=...)``)."""

    key: str
    kind: str
    writer: str
    meaning: str
    load: Callable[[Any], T]
    default: T
    scope: Scope = Scope.TRIAL_SYSTEM

    def get(self, source: SystemHolder | Mapping[str, Any]) -> T:
        attrs = source if isinstance(source, Mapping) else source.system_attrs
        raw = attrs.get(self.key)
        return copy.copy(self.default) if raw is None else self.load(raw)

    def put(self, storage: BaseStorage, trial_id: int, value: T) -> None:
        storage.set_trial_system_attr(trial_id, self.key, value)  # type: ignore[arg-type]

    def entry(self, value: T) -> dict[str, Any]:
        """``{key: value}``, for ``create_trial(system_attrs=...)`` or one batched write."""
        return {self.key: value}


def text(raw: Any) -> str:
    return str(raw)


def text_or_empty(raw: Any) -> str:
    return str(raw or "")


def role(raw: Any) -> str:
    if isinstance(raw, dict | list):
        raise TypeError(f"a trial's role must be text, not {type(raw).__name__}")
    return str(raw)


def json_object(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected a JSON object, not {type(raw).__name__}")
    return dict(raw)


def mapping(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected a JSON object, not {type(raw).__name__}")
    return dict(raw)


def object_or_none(raw: Any) -> dict[str, Any] | None:
    return dict(raw) if isinstance(raw, Mapping) else None


def number(raw: Any) -> float:
    return float(raw)


def integer(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"expected an integer, not {type(raw).__name__}")
    return raw


def numbers(raw: Any) -> list[float]:
    if not isinstance(raw, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        raise TypeError(f"expected a list of numbers, not {raw!r:.40}")
    return list(raw)


def objects(raw: Any) -> list[dict[str, Any]]:
    """A list of JSON objects (anything else in it is left out)."""
    return [dict(item) for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []


def texts(raw: Any) -> list[str]:
    return [str(v) for v in raw]


def integers(raw: Any) -> list[int]:
    return [integer(v) for v in raw]


def runs(raw: Any) -> list[Run]:
    return [Run.from_dict(run) for run in raw]


def dump_runs(runs: list[Run]) -> list[dict[str, Any]]:
    return [run.to_dict() for run in runs]
