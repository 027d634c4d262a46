"""Normalizers: volatile values (timestamps, ids, temporary paths) rewritten before matching.

A rule names a body path — dotted, ``*`` for any key or list item, digits for an index,
as ``ignore_body_fields`` — a regular expression and its replacement. Every string at or
below the path has each match replaced, in the incoming request and in the recorded one
alike, so a tool result that holds today's date still matches the recording::

    normalize:
      - {path: "messages.*.content.*.content", pattern: "\\\\d{4}-\\\\d\\\\d-\\\\d\\\\dT[^\\"]*",
         replace: "<time>"}

Rules come from the ``normalize`` setting (every cassette) or a cassette's own
``normalize:`` list (that cassette's interactions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Normalize:
    """One rule: at ``path``, ``pattern`` becomes ``replace``."""

    path: tuple[str, ...]
    pattern: re.Pattern[str]
    replace: str

    @classmethod
    def parse(cls, value: Any) -> Normalize:
        """A rule from ``{path, pattern, replace}``; ``ValueError`` saying what is wrong."""
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a mapping with path, pattern and replace, got {value!r}")
        unknown = sorted(set(value) - {"path", "pattern", "replace"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (expected path, pattern, replace)")
        path, pattern, replace = value.get("path"), value.get("pattern"), value.get("replace", "")
        if not isinstance(path, str) or not path or "" in path.split("."):
            raise ValueError(f"path: expected a dotted body path such as 'a.*.b', got {path!r}")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"pattern: expected a regular expression, got {pattern!r}")
        if not isinstance(replace, str):
            raise ValueError(f"replace: expected text, got {replace!r}")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern: {pattern!r} is not a regular expression: {exc}") from None
        return cls(tuple(path.split(".")), compiled, replace)

    def __str__(self) -> str:
        return f"{'.'.join(self.path)}: {self.pattern.pattern} -> {self.replace}"


def normalized(body: Any, rules: Sequence[Normalize]) -> Any:
    """``body`` with every rule applied (a new value; the input is not changed)."""
    for rule in rules:
        body = _at(body, rule.path, rule)
    return body


def _at(value: Any, path: tuple[str, ...], rule: Normalize) -> Any:
    if not path:
        return _every_string(value, rule)
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        keys = list(value) if head == "*" else [head] if head in value else []
        if not keys:
            return value
        out = dict(value)
        for key in keys:
            out[key] = _at(value[key], rest, rule)
        return out
    if isinstance(value, list):
        if head == "*":
            return [_at(v, rest, rule) for v in value]
        if head.isdigit() and int(head) < len(value):
            i = int(head)
            return [*value[:i], _at(value[i], rest, rule), *value[i + 1 :]]
    return value


def _every_string(value: Any, rule: Normalize) -> Any:
    if isinstance(value, str):
        return rule.pattern.sub(rule.replace, value)
    if isinstance(value, Mapping):
        return {k: _every_string(v, rule) for k, v in value.items()}
    if isinstance(value, list):
        return [_every_string(v, rule) for v in value]
    return value
