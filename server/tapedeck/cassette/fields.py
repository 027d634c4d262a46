"""Typed access to one mapping of cassette YAML, with errors that name the file, line and field."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import CassetteError
from .model import Client
from .yaml_source import BadValue, LineDict

_ABSENT = object()
#: The fields of a request's ``client:`` (:func:`client`).
CLIENT_KEYS = frozenset({"name", "release"})


class Fields:
    """Typed access to one YAML mapping, with errors that say where and what was expected."""

    def __init__(self, file: str, where: str, mapping: Any, line: int, allowed: frozenset[str]):
        self.file = file
        self.where = where
        if not isinstance(mapping, dict):
            raise self.error(line, f"expected a mapping, got {describe(mapping)}")
        self.mapping: dict[str, Any] = mapping
        self.line = mapping.line if isinstance(mapping, LineDict) else line
        if allowed.issuperset(mapping):  # the usual case, at C speed
            return
        unknown = sorted(str(k) for k in mapping if k not in allowed)
        if unknown:
            raise self.error(
                self.line_of(unknown[0]),
                f"unknown field {unknown[0]!r} (expected one of: {', '.join(sorted(allowed))})",
            )

    def error(self, line: int, problem: str, key: str | None = None) -> CassetteError:
        where = f"{self.where}.{key}" if key and self.where else (key or self.where)
        return CassetteError(self.file, line, f"{where}: {problem}" if where else problem)

    def line_of(self, key: str) -> int:
        m = self.mapping
        return m.line_of(key) if isinstance(m, LineDict) else self.line

    def has(self, key: str) -> bool:
        return key in self.mapping

    def get(self, key: str, expected: str, kinds: tuple[type, ...], default: Any = None) -> Any:
        value = self.mapping.get(key, _ABSENT)
        if value is _ABSENT:
            return default
        if type(value) in kinds:  # the usual case (a bool is only where bool is a kind)
            return value
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            line = value.line if isinstance(value, BadValue) else self.line_of(key)
            raise self.error(line, f"expected {expected}, got {describe(value)}", key)
        return value

    def require(self, key: str, expected: str, kinds: tuple[type, ...]) -> Any:
        if key not in self.mapping:
            raise self.error(self.line, f"missing field {key!r} ({expected})")
        return self.get(key, expected, kinds)

    def number(self, key: str, default: float | None) -> float | None:
        value = self.get(key, "a number of milliseconds >= 0", (int, float), default)
        if value is None:
            return None
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            text = str(value)
            shown = text if len(text) <= 30 else f"a number of {len(text)} digits"
            raise self.error(
                self.line_of(key), f"expected a finite number of milliseconds, got {shown}", key
            )
        if number < 0:
            raise self.error(self.line_of(key), f"expected a number >= 0, got {value}", key)
        return number

    def child(self, key: str, allowed: frozenset[str]) -> Fields:
        where = f"{self.where}.{key}" if self.where else key
        return Fields(self.file, where, self.mapping[key], self.line_of(key), allowed)


def describe(value: Any) -> str:
    if isinstance(value, BadValue):
        return repr(value)
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def as_json(f: Fields, key: str, value: Any) -> str:
    """``value`` as compact JSON text; YAML-only values (binary, sets, ...) are an error."""
    unreadable: list[BadValue] = []

    def refuse(item: object) -> object:
        if isinstance(item, BadValue):
            unreadable.append(item)
        raise TypeError(f"{type(item).__name__} values are not JSON ({item!r:.60})")

    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=refuse
        )
    except (TypeError, ValueError, RecursionError) as exc:
        if unreadable:
            bad = unreadable[0]
            raise f.error(bad.line, f"cannot read the value {bad!r}", key) from None
        raise f.error(
            f.line_of(key), f"expected JSON data (mappings, lists, text, numbers), but {exc}", key
        ) from None


def client(c: Fields) -> Client:
    """A request's ``client: {name, release}``: who sent it (:mod:`.clients`)."""
    name = c.require("name", "the client's name, e.g. claude-cli", (str,))
    if not name.strip():
        raise c.error(c.line_of("name"), "expected the client's name, got ''", "name")
    release = c.get("release", "text, e.g. '2.1.337' (quote a release such as '1.10')", (str,))
    return Client(name, release)
