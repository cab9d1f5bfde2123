"""Typed configs from plain JSON objects: one reader for every config dataclass.

Each config is a dataclass whose defaults live in its fields and whose checks live in its __post_init__;
`from_plain` turns a JSON object into one (nested config dataclasses included), refusing what is not an
object and any key the dataclass does not have, so a misspelt setting is an error, never silently ignored.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import TypeVar

T = TypeVar("T")


def from_plain(cls: type[T], data: object, what: str) -> T:
    """`cls(**data)` for a dataclass `cls`, with nested dataclass fields built the same way.

    Raises ValueError naming `what` for a non-object, an unknown key or a value the dataclass refuses
    (its __post_init__ raises ValueError; a value of the wrong kind gives TypeError, reported alike)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown {what} keys: {unknown}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        kind = hints.get(key)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            value = from_plain(kind, value, f"{what} {key!r}")
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad {what}: {exc}") from None
