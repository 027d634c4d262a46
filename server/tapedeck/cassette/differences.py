"""Explaining a miss: how a request differs from a recorded one, field by field.

Each difference is ``(field, incoming, recorded)``. It is shown to the client with the values
(``messages[0].content: "Hi" != "Hello"`` — the client sent them, and they are already
redacted), and written to the log without them: the field, the kind and size of each value
and a short hash to tell them apart (``messages[0].content: text of 2 chars #3f1a !=
text of 5 chars #b0c2``), so the log holds no request content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .matching import RequestShape

_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Difference:
    """One field in which an incoming request differs from a recorded one."""

    field: str
    incoming: Any
    recorded: Any

    def shown(self) -> str:
        """``field: incoming != recorded``, with the values (for the client)."""
        if self.field == "method":
            return f"method: {self.incoming} != {self.recorded}"
        return f"{self.field}: {_show(self.incoming)} != {_show(self.recorded)}"

    def logged(self) -> str:
        """``field: kind != kind``, without the values (for the log)."""
        if self.field == "method":
            return self.shown()
        return f"{self.field}: {_describe(self.incoming)} != {_describe(self.recorded)}"


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode())
    tag = f"#{digest.hexdigest()[:4]}"
    if isinstance(value, str):
        return f"text of {len(value)} chars {tag}"
    if isinstance(value, int | float):
        return f"a number {tag}"
    if isinstance(value, list):
        return f"a list of {len(value)} {tag}"
    if isinstance(value, Mapping):
        return f"an object of {len(value)} fields {tag}"
    return f"a value {tag}"


def _body(path: str, got: Any, want: Any) -> Iterator[Difference]:
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        keys = list(want) + [k for k in got if k not in want]
        for key in keys:
            yield from _body(
                f"{path}.{key}" if path else str(key), got.get(key, _ABSENT), want.get(key, _ABSENT)
            )
    elif isinstance(got, list) and isinstance(want, list):
        for i in range(max(len(got), len(want))):
            yield from _body(
                f"{path}[{i}]",
                got[i] if i < len(got) else _ABSENT,
                want[i] if i < len(want) else _ABSENT,
            )
    elif got != want or type(got) is not type(want):
        yield Difference(path or "body", got, want)


def weight(difference: Difference, cap: int = 10_000) -> int:
    """How much a difference counts when picking the closest interaction: the values in the
    larger side (a missing turn of a conversation outweighs a changed word)."""
    return max(_leaves(difference.incoming, cap), _leaves(difference.recorded, cap), 1)


def _leaves(value: Any, cap: int) -> int:
    if isinstance(value, Mapping):
        return min(cap, sum(_leaves(v, cap) for v in value.values()))
    if isinstance(value, list):
        return min(cap, sum(_leaves(v, cap) for v in value))
    return 0 if value is _ABSENT else 1


def compare(got: RequestShape, want: RequestShape) -> Iterator[Difference]:
    """Each way ``got`` (the incoming request) differs from ``want`` (the recorded one);
    the first is the one worth showing."""
    if got.method != want.method:
        yield Difference("method", got.method, want.method)
    if got.path != want.path:
        yield Difference("path", got.path, want.path)
    if got.query != want.query:
        yield Difference("query", dict(got.query), dict(want.query))
    got_headers, want_headers = dict(got.headers), dict(want.headers)
    for name in sorted(set(got_headers) | set(want_headers)):
        a, b = got_headers.get(name, _ABSENT), want_headers.get(name, _ABSENT)
        if a != b:
            yield Difference(f"header {name}", a, b)
    yield from _body("", got.body, want.body)


def differences(got: RequestShape, want: RequestShape) -> Iterator[str]:
    """Describe each way ``got`` (the incoming request) differs from ``want`` (recorded).

    Each item reads ``field: incoming != recorded``, e.g.
    ``messages[0].content: "hi" != "hello"``; the first is the one worth showing.
    """
    return (d.shown() for d in compare(got, want))
