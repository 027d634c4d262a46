"""Explaining a miss: how a request differs from a recorded one, field by field.

Each difference is ``(field, incoming, recorded)``. It is shown to the client with the values
(``messages[0].content: "Hi" != "Hello"`` — the client sent them, and they are already
redacted), and written to the log without them: the field, the kind and size of each value
and a short hash to tell them apart (``messages[0].content: text of 2 chars #3f1a !=
text of 5 chars #b0c2``), so the log holds no request content.

Lists and mappings are compared item by item and key by key, so a difference names the
first item or key that differs (``tools[3].description``, ``messages[5]: {...} !=
(absent)``). Two texts either of which is longer than :data:`SHOWN_WHOLE` characters (as
JSON) are shown around their first difference: its offset (from 0), the
:data:`WINDOW_BEFORE` characters before it (the same on both sides) and
:data:`WINDOW_AFTER` characters from it on each side::

    system[2].text at char 1,234: "…directory: /srv/alpha…" != "…directory: /srv/beta…"

The log names the offset too, still without the values (``system[2].text at char 1,234:
text of 6012 chars #3f1a != text of 6011 chars #b0c2``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import json_text
from .matching import RequestShape

_ABSENT = object()
#: A value longer than this as JSON is not shown whole: two texts are shown around their
#: first difference, anything else cut short.
SHOWN_WHOLE = 60
#: Characters shown before a long text's first difference (the same on both sides) ...
WINDOW_BEFORE = 30
#: ... and from it on, on each side.
WINDOW_AFTER = 40
#: A text longer than this is measured and cut rather than written out as JSON (smaller
#: values cost less written out in C than walked in Python).
_WRITTEN_WHOLE = 4096


@dataclass(frozen=True, slots=True)
class Window:
    """Two long texts around their first difference: its offset ``at``, the text just
    before it (``before``, the same on both sides) and each side's text from it on."""

    at: int
    before: str
    incoming: str
    recorded: str
    #: Whether each side's text goes on past what is shown.
    incoming_more: bool
    recorded_more: bool

    def shown(self, side: str) -> str:
        """One side as JSON text, ``…`` where the text goes on: ``"…/srv/alpha…"``."""
        after, more = (
            (self.incoming, self.incoming_more)
            if side == "incoming"
            else (self.recorded, self.recorded_more)
        )
        start = "…" if self.at > len(self.before) else ""
        inner = json.dumps(self.before + after, ensure_ascii=False)[1:-1]
        return f'"{start}{inner}{"…" if more else ""}"'

    def as_json(self) -> dict[str, Any]:
        """``{"at", "before", "incoming", "recorded"}``: the journal's ``window``."""
        return {
            "at": self.at,
            "before": self.before,
            "incoming": self.incoming,
            "recorded": self.recorded,
        }


@dataclass(frozen=True, slots=True)
class Difference:
    """One field in which an incoming request differs from a recorded one."""

    field: str
    incoming: Any
    recorded: Any

    def window(self) -> Window | None:
        """Where two long texts first differ; ``None`` for anything else (short texts are
        shown whole)."""
        got, want = self.incoming, self.recorded
        if not isinstance(got, str) or not isinstance(want, str):
            return None
        if _shown_whole(got) and _shown_whole(want):
            return None
        at = json_text.common_start(got, want)
        end = at + WINDOW_AFTER
        return Window(
            at,
            got[max(0, at - WINDOW_BEFORE) : at],
            got[at:end],
            want[at:end],
            len(got) > end,
            len(want) > end,
        )

    def where(self) -> str:
        """The field, and for long texts the offset of their first difference."""
        window = self.window()
        return self.field if window is None else f"{self.field} at char {window.at:,}"

    def shown(self) -> str:
        """``field: incoming != recorded``, with the values (for the client)."""
        if self.field == "method":
            return f"method: {self.incoming} != {self.recorded}"
        window = self.window()
        if window is not None:
            return (
                f"{self.field} at char {window.at:,}: "
                f"{window.shown('incoming')} != {window.shown('recorded')}"
            )
        return f"{self.field}: {_show(self.incoming)} != {_show(self.recorded)}"

    def sides(self) -> dict[str, Any]:
        """``{"incoming": ..., "recorded": ...}``, without a side that is absent."""
        pairs = (("incoming", self.incoming), ("recorded", self.recorded))
        return {side: value for side, value in pairs if value is not _ABSENT}

    def logged(self) -> str:
        """``field: kind != kind``, without the values (for the log)."""
        if self.field == "method":
            return self.shown()
        return f"{self.where()}: {_describe(self.incoming)} != {_describe(self.recorded)}"

    def size(self) -> int:
        """How many characters differ: between the common start and the common end of the
        two texts (of their JSON, for other values; all of a side that is absent), the
        longer side's. ``"Hello there"`` and ``"Hello"`` differ by 6."""
        got, want = self.incoming, self.recorded
        if isinstance(got, str) and isinstance(want, str):
            start = json_text.common_start(got, want)
            return max(len(got), len(want)) - start - json_text.common_end(got, want, start)
        if got is _ABSENT or want is _ABSENT:  # the other side's JSON, all of it
            return json_text.length(want if got is _ABSENT else got)
        if not _long_text(got) and not _long_text(want):
            got, want = json_text.as_json(got), json_text.as_json(want)
            start = json_text.common_start(got, want)
            return max(len(got), len(want)) - start - json_text.common_end(got, want, start)
        # A long text against another kind of value: their JSON texts compared from each
        # end only as far as they agree, the text not written out whole.
        got_length, want_length = json_text.length(got), json_text.length(want)
        shorter = min(got_length, want_length)
        start = json_text.common_json(got, want, shorter, from_end=False)
        end = json_text.common_json(got, want, shorter - start, from_end=True)
        return max(got_length, want_length) - start - end


def _long_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) > _WRITTEN_WHOLE


def _shown_whole(text: str) -> bool:
    """Whether ``text`` is at most :data:`SHOWN_WHOLE` characters as JSON (escapes only
    lengthen it: a longer text is not written out to learn that)."""
    return len(text) + 2 <= SHOWN_WHOLE and json_text.length(text) <= SHOWN_WHOLE


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json_text.head(value, SHOWN_WHOLE)
    return text if len(text) <= SHOWN_WHOLE else text[: SHOWN_WHOLE - 3] + "..."


def _describe(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    tag = f"#{json_text.digest(value)[:4]}"
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
    """How many fields a difference counts for when picking the closest interaction: the
    values in the larger side (a missing turn of a conversation outweighs a changed word)."""
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
