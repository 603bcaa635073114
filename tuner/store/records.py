"""Attribute values that fit optuna-dashboard: it shows an attribute as its text (a string as
it is, anything else as JSON) and cuts the JSON of a value at 1,024 characters, so a larger
value (a study file, a trial's runs with their output tails, a confirmation) would show as
a broken fragment.

``put`` stores a value whose text fits under its key as it is. A larger one is written as
parts of at most ``LIMIT`` characters under ``KEY~V.1``, ``KEY~V.2``, ... and then, last,
a small marker under ``KEY`` naming them: ``{"tuner:parts": N, "id": V, "json": ...}``.
``get`` reassembles it (and returns small values as they are). Readers of a large attribute
therefore always ask ``get``, never ``user_attrs[KEY]``; the typed attributes of
``tuner.store.attributes`` marked *parts* do.

``V`` is 1 for a first write, so every trial's parts have the same keys (optuna-dashboard
makes a column of each key). A writer that replaces a value stored in parts passes the
attributes it holds (``current``): the new parts then get the next ``V`` and the marker is
written after them, so a reader never mixes the parts of two writes: it sees the old marker
with the old parts, or the new marker with the new ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

LIMIT = 1000
MARK = "tuner:parts"
Setter = Callable[[str, Any], None]


def shown(value: Any) -> str:
    """The text optuna-dashboard shows for an attribute value (before cutting it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value)
    return str(value)


def put(set_attr: Setter, key: str, value: Any,
        current: Mapping[str, Any] | None = None) -> None:
    """Store ``value`` under ``key`` with ``set_attr`` (a study's or a trial's
    ``set_user_attr``), in parts when its text is longer than ``LIMIT``; ``current``, the
    attributes as they are, when this may replace a value stored in parts."""
    is_text = isinstance(value, str)
    text = shown(value)  # a number's text is short, so what goes to parts is JSON or text
    if len(text) <= LIMIT:
        set_attr(key, value)
        return
    previous = (current or {}).get(key)
    ident = 1
    if isinstance(previous, dict) and MARK in previous:
        try:
            ident = int(previous["id"]) + 1
        except (KeyError, TypeError, ValueError):
            ident = 1
    parts = [text[i:i + LIMIT] for i in range(0, len(text), LIMIT)]
    for number, part in enumerate(parts, start=1):
        set_attr(f"{key}~{ident}.{number}", part)
    set_attr(key, {MARK: len(parts), "id": ident, "json": not is_text, "chars": len(text)})


def get(attrs: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value ``put`` stored under ``key`` (``default`` if there is none)."""
    value = attrs.get(key, default)
    if not (isinstance(value, dict) and MARK in value):
        return value
    try:
        text = "".join(attrs[f"{key}~{value['id']}.{n}"]
                       for n in range(1, int(value[MARK]) + 1))
        return json.loads(text) if value.get("json") else text
    except (KeyError, TypeError, ValueError):
        return default


def is_part(key: str) -> bool:
    """True for the key of one part of a larger value (not a value of its own)."""
    return "~" in key and key.rsplit(".", 1)[-1].isdigit()
