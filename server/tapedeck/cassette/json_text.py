"""Parts of a value's JSON text without writing all of it: its length, its first or last
characters, its digest, and how far two texts (or two values' JSON) agree from each end.

Each agrees exactly with ``json.dumps(value, ensure_ascii=False, default=str)`` (the text a
miss shows and measures; :func:`digest` with the ``json.dumps(value, sort_keys=True,
default=str)`` a miss's log line hashes), but costs what the answer needs: the first 60
characters of a 1 MB message are cut from its first 61, and a text's length is counted
rather than written out. A JSON string's escapes are character by character, so the escaped
prefix (or suffix) of a text is the prefix (or suffix) of its escaped form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Any

from ..errors import UnusualJSON

#: Characters ``json.dumps(..., ensure_ascii=False)`` escapes (as bytes of an ASCII text) ...
_ESCAPED = bytes(range(0x20)) + b'"\\'
#: ... those of them escaped in two characters (the rest take six: ``\u001f``) ...
_ESCAPED_SHORT = b'"\\\b\f\n\r\t'
#: ... and those ``json.dumps`` escapes by default (ensure_ascii): also DEL.
_ESCAPED_ASCII = _ESCAPED + b"\x7f"


def _pieces(value: Any, backwards: bool) -> Iterator[tuple[bool, str]]:
    """The JSON text of ``value`` in pieces, first to last (or last to first): ``(False,
    text)`` as it is written, ``(True, text)`` for a string's characters, to be escaped."""
    if isinstance(value, str):
        yield from ((False, '"'), (True, value), (False, '"'))
    elif isinstance(value, list | tuple):
        if not value:
            yield False, "[]"
            return
        yield False, "]" if backwards else "["
        for i, item in enumerate(reversed(value) if backwards else value):
            if i:
                yield False, ", "
            yield from _pieces(item, backwards)
        yield False, "[" if backwards else "]"
    elif isinstance(value, dict):
        if not value:
            yield False, "{}"
            return
        yield False, "}" if backwards else "{"
        items = reversed(value.items()) if backwards else value.items()
        for i, (key, item) in enumerate(items):
            if not isinstance(key, str):
                raise UnusualJSON
            if i:
                yield False, ", "
            if backwards:
                yield from _pieces(item, backwards)
                yield False, ": "
            yield from ((False, '"'), (True, key), (False, '"'))
            if not backwards:
                yield False, ": "
                yield from _pieces(item, backwards)
        yield False, "{" if backwards else "}"
    else:
        yield False, json.dumps(value, ensure_ascii=False, default=str)


def _escaped(text: str) -> str:
    return encode_basestring(text)[1:-1]


def _escaped_length(text: str) -> int:
    """``len(_escaped(text))``, counted (an ASCII text) rather than written."""
    if not text.isascii():
        return len(_escaped(text))
    raw = text.encode()
    escaped = len(raw) - len(raw.translate(None, _ESCAPED))
    if not escaped:
        return len(text)
    short = len(raw) - len(raw.translate(None, _ESCAPED_SHORT))
    return len(text) + short + 5 * (escaped - short)


def as_json(value: Any) -> str:
    """The JSON text of ``value``, as a miss shows it."""
    return json.dumps(value, ensure_ascii=False, default=str)


def length(value: Any) -> int:
    """``len(as_json(value))``: a text's counted, anything else's written (in C, faster
    than walking a structure of many small parts here)."""
    if isinstance(value, str):
        return _escaped_length(value) + 2
    return len(as_json(value))


def head(value: Any, size: int) -> str:
    """``as_json(value)`` if it is at most ``size`` characters long, else a prefix of it
    longer than ``size``."""
    return _end(value, size, backwards=False)


def tail(value: Any, size: int) -> str:
    """``as_json(value)`` if it is at most ``size`` characters long, else a suffix of it
    longer than ``size``."""
    return _end(value, size, backwards=True)


def _end(value: Any, size: int, backwards: bool) -> str:
    out: list[str] = []
    have = 0
    try:
        for raw, text in _pieces(value, backwards):
            if raw:
                wanted = size - have + 1  # an escaped character is at least one character
                if len(text) > wanted:
                    text = text[len(text) - wanted :] if backwards else text[:wanted]
                text = _escaped(text)
            out.append(text)
            have += len(text)
            if have > size:
                break
    except UnusualJSON:
        whole = as_json(value)
        if len(whole) <= size:
            return whole
        return whole[-size - 1 :] if backwards else whole[: size + 1]
    return "".join(reversed(out) if backwards else out)


def digest(value: Any) -> str:
    """The SHA-256 (hex) of ``json.dumps(value, sort_keys=True, default=str)``; a text of
    printable ASCII is hashed without being copied into JSON first."""
    if isinstance(value, str) and value.isascii():
        raw = value.encode()
        if len(raw.translate(None, _ESCAPED_ASCII)) == len(raw):
            hashed = hashlib.sha256(b'"')
            hashed.update(raw)
            hashed.update(b'"')
            return hashed.hexdigest()
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def common_start(a: str, b: str) -> int:
    """The length of the text ``a`` and ``b`` start with. Pieces twice as long each time are
    compared (in C) until one differs, then halved: the cost follows the common part."""
    size = min(len(a), len(b))
    low, step = 0, 64
    while low < size:  # a[:low] == b[:low]
        high = min(size, low + step)
        if a[low:high] != b[low:high]:
            break
        low, step = high, step * 2
    else:
        return size
    while high - low > 1:  # a[:low] == b[:low] and a[:high] != b[:high]
        middle = (low + high) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle
    return low


def common_end(a: str, b: str, skip: int = 0) -> int:
    """The length of the text ``a[skip:]`` and ``b[skip:]`` end with (as
    :func:`common_start`, from the end)."""
    size, la, lb = min(len(a), len(b)) - skip, len(a), len(b)
    low, step = 0, 64
    while low < size:  # the last low characters agree
        high = min(size, low + step)
        if a[la - high : la - low] != b[lb - high : lb - low]:
            break
        low, step = high, step * 2
    else:
        return max(size, 0)
    while high - low > 1:
        middle = (low + high) // 2
        if a[la - middle : la - low] == b[lb - middle : lb - low]:
            low = middle
        else:
            high = middle
    return low


def common_json(got: Any, want: Any, most: int, from_end: bool) -> int:
    """How many characters the JSON texts of ``got`` and ``want`` share at their start (or
    end), at most ``most``: longer pieces of each are cut until they differ."""
    size = 64
    while True:
        if from_end:
            a, b = tail(got, size), tail(want, size)
            shown = min(len(a), len(b), most)
            found = common_end(a[len(a) - shown :], b[len(b) - shown :])
        else:
            a, b = head(got, size), head(want, size)
            shown = min(len(a), len(b), most)
            found = common_start(a[:shown], b[:shown])
        if found < shown or shown >= most:
            return found
        size *= 4
