"""A fast path for reading cassette YAML, taken only where it reads what the reference does.

The reference loader (:mod:`.yaml_source`) tracks the line of every mapping, so problems can
be reported as ``file:line``; it runs at a few MB/s. ``yaml_rs`` (a YAML parser in Rust)
reads ten times faster but resolves some plain scalars differently: YAML 1.1 forms such as
``012`` (octal), ``12:30`` (base 60), ``1e3`` or ``_5``, and merge keys, tags, anchors. So a
text goes the fast way only when none of those can be in it: every plain scalar made of
digits and number punctuation must be a plain decimal (``-12``, ``0.5``, ``1.5e-05``), and no
tag, anchor, alias, merge key or second document may appear; keys must be text. The check
is conservative — text inside quotes can trip it too, which only costs the slower path —
and ``tests/test_fast_yaml.py`` holds it to that on random documents.
:func:`load` answers ``None`` whenever the fast way is not taken; the caller then reads the
text with the reference loader, which also reports any problem.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

try:
    import yaml_rs

    AVAILABLE = True
except ImportError:  # pragma: no cover - a platform without its wheel: the reference only
    AVAILABLE = False

_END = r"(?=[ \t]*(?:$|[,\]}#]|:(?:[ \t]|$)))"
_FRACTION = r"(?:\.[0-9]+(?:[eE][-+][0-9]+)?)?"
_END_B, _FRACTION_B = _END.encode(), _FRACTION.encode()
#: A token of number characters (where one may start: after a space, a line break or a flow
#: indicator; :func:`_starts_scalar` then keeps those that start a whole scalar) that is not
#: read alike by both loaders: anything but a plain decimal (``-12``, ``0.5``, ``1.5e-05``)
#: or infinity / not-a-number, that has a digit or looks like ``.inf`` / ``.nan``. Written
#: so that the engine only starts at a number character, and decimals fail at once.
_RISKY_TOKEN = re.compile(
    rb"[-+._0-9](?<=[\s\[{,][-+._0-9])"
    rb"(?!(?<=-)(?:0|[1-9][0-9]*)" + _FRACTION_B + _END_B
    + rb"|(?<=0)" + _FRACTION_B + _END_B
    + rb"|(?<=[1-9])[0-9]*" + _FRACTION_B + _END_B
    + rb"|(?<=\.)(?:inf|Inf|INF|nan|NaN|NAN)" + _END_B
    + rb"|(?<=[-+])\.(?:inf|Inf|INF)" + _END_B
    + rb")(?:(?<=[0-9])|(?=[-+._:a-zA-Z]*[0-9])|(?<=\.)(?=[iI][nN][fF]|[nN][aA][nN])"
    rb"|(?<=[-+])(?=\.(?:[iI][nN][fF]|[nN][aA][nN])))"
    rb"[-+._:0-9a-zA-Z]*" + _END_B,
    re.M,
)  # fmt: skip
#: What may come before a tag, anchor or alias indicator (``!``, ``&``, ``*``) or a lone
#: ``=`` (YAML 1.1's value key) that starts a scalar; and what may follow the ``=``.
_OPENERS = frozenset(b" \t\n[{,")
_AFTER_EQUALS = frozenset(b" \t\n,]}")
#: A key or value that starts with ``:`` (a ``:`` after a blank, a line break or a flow
#: indicator), a ``:`` before a flow delimiter; a line that starts a second document or a
#: flow collection (a collection as a key). Each pattern starts with one character, so the
#: engine stops only at a ``:`` or a line break.
_RISKY_COLON = re.compile(rb":(?:(?<=[ \t\n\[{,]:)|(?=[,\]}]))")
_RISKY_LINE = re.compile(rb"\n(?:---|\.\.\.|[ \t]*[\[{])")
#: A ``:`` not followed by a space after a flow collection opened on its line: inside a
#: flow collection YAML 1.2 (the fast parser) reads ``a:b`` as one scalar, PyYAML refuses it.
_FLOW_COLON = re.compile(rb"[\[{][^\n]*:[^ \t\r\n]")


def _marks(data: bytes) -> bool:
    for mark in b"!&*=":
        i = data.find(mark)
        while i != -1:
            if data[i - 1] in _OPENERS and (
                mark != 61 or i + 1 == len(data) or data[i + 1] in _AFTER_EQUALS  # 61: "="
            ):
                return True
            i = data.find(mark, i + 1)
    for quote in (b'":', b"':"):  # a quoted key followed by anything but a space
        i = data.find(quote)
        while i != -1:
            if i + 2 < len(data) and data[i + 2] not in _SPACE:
                return True
            i = data.find(quote, i + 1)
    return False


_SPACE = frozenset(b" \t\r\n")


#: A quoted scalar where one can start (after ``: ``, ``- ``, a flow indicator or at a line's
#: start): what is inside it cannot change how either loader reads the rest.
_QUOTED = re.compile(
    rb"""(?:(?<=: )|(?<=- )|(?<=[\[{,])|^)[ \t]*(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')""", re.M
)


#: What YAML does not allow in a stream (PyYAML's "printable" set, negated), and the line
#: breaks of YAML 1.1 that 1.2 reads as text (NEL, LS, PS).
_UNPRINTABLE = "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


@functools.cache
def _unprintable() -> re.Pattern[str]:
    """:data:`_UNPRINTABLE`, compiled when a text that is not ASCII first needs it (its
    ranges take milliseconds to compile: every start would pay them)."""
    return re.compile(_UNPRINTABLE)


#: The ASCII part of that set: ``bytes.translate`` deleting these leaves what is not in it.
_PRINTABLE_ASCII = b"\t\n\r" + bytes(range(0x20, 0x7F))


def trusted(text: str) -> bool:
    """Whether the fast loader reads ``text`` as the reference loader does.

    Plain byte searches first (C speed), and the regular expressions only where a token of
    number characters starts; when something looks risky, it is looked at again with the
    quoted scalars taken out (JSON fragments and prose in quotes trip the first look).
    """
    # What PyYAML refuses (let it say where); for ASCII, a byte table says it at C speed.
    data = b"\n" + text.encode()  # a line break before the first line, as before the rest
    if data.translate(None, _PRINTABLE_ASCII) if text.isascii() else _unprintable().search(text):
        return False
    return _clean_lines(data) or _clean(_QUOTED.sub(b'""', data))


#: Lines the first look found clean. That look is line by line (each check looks at a line
#: from its start to its break: the character before a token, the rest of the line after
#: it), and a library's cassettes share most of their lines (keys, event names, models,
#: time stamps), so a line found clean once is not looked at again. At most
#: :data:`_REMEMBERED` lines of at most :data:`_REMEMBERED_WIDTH` bytes are kept.
_CLEAN_LINES: set[bytes] = set()
_REMEMBERED = 20_000
_REMEMBERED_WIDTH = 120


def _clean_lines(data: bytes) -> bool:
    """``_clean(data)`` for ``data`` that starts with a line break, looking only at the
    lines not remembered clean (together, each between line breaks as in ``data``)."""
    lines = data.split(b"\n")
    new = [line for line in lines if line not in _CLEAN_LINES]
    if not new:
        return True
    if not _clean(b"\n" + b"\n".join(new) + b"\n"):
        return False
    if len(_CLEAN_LINES) + len(new) > _REMEMBERED:
        _CLEAN_LINES.clear()
    _CLEAN_LINES.update(line for line in new if len(line) <= _REMEMBERED_WIDTH)
    return True


def _clean(data: bytes) -> bool:
    # PyYAML refuses tabs where YAML 1.2 allows them.
    if b"\t" in data or _RISKY_COLON.search(data) or _RISKY_LINE.search(data):
        return False
    if (b"<" in data and b"<<" in data) or _marks(data):  # merge keys; tags, anchors, ...
        return False
    if _FLOW_COLON.search(data):
        return False
    return not any(_starts_scalar(data, m.start()) for m in _RISKY_TOKEN.finditer(data))


def _starts_scalar(data: bytes, at: int) -> bool:
    """Whether a plain scalar can start at ``at``: after ``: ``, ``- ``, a flow indicator or a
    line's indentation — not after a word, where it is part of a longer scalar."""
    i = at - 1
    while data[i] in _BLANK:
        i -= 1
    before = data[i]
    return before in _STARTERS or (before in _AFTER and i < at - 1)


_BLANK = frozenset(b" \t")
_STARTERS = frozenset(b"\n[{,")
_AFTER = frozenset(b":-")


#: Encodes only JSON data: a key that is not text or a NaN or infinite number is refused.
_JSON_ONLY = json.JSONEncoder(allow_nan=False, check_circular=False)


def load(text: str) -> Any | None:
    """The document in ``text``, or ``None`` when the fast way is not taken (not trusted for
    this text, not installed, or a problem the reference loader should report)."""
    if not AVAILABLE or not trusted(text):
        return None
    try:
        document = yaml_rs.loads(
            text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error
        )
    except (ValueError, TypeError, RecursionError):
        return None
    # A collection as a key (read as a tuple) or a NaN has no place in a cassette (its data
    # is JSON), and the reference loader reads or refuses it differently: let it report it.
    try:
        _JSON_ONLY.encode(document)
    except (TypeError, ValueError, RecursionError):
        return None
    return document


_INTERACTIONS = re.compile(r"interactions:[ \t]*(?:#.*)?\r?\n( *)- ")


def interaction_lines(text: str, count: int) -> list[int] | None:
    """The line each of the ``count`` interactions starts on, found in block-style text
    (``None`` when the layout is not the usual one: the caller then reads lines the slow
    way)."""
    at = text.find("interactions:")
    found = None
    while at != -1 and found is None:
        if at == 0 or text[at - 1] == "\n":  # at a line's start
            found = _INTERACTIONS.match(text, at)
        at = text.find("interactions:", at + 13)
    if found is None:
        return None
    start = found.start(1)
    item = "\n" + found.group(1) + "- "
    lines: list[int] = []
    line = text.count("\n", 0, start) + 1
    position = start
    at = text.find(item, start - 1)
    while at != -1:
        line += text.count("\n", position, at + 1)
        position = at + 1
        lines.append(line)
        at = text.find(item, at + 1)
    # A top-level key with a list after the interactions would add items at the same
    # indentation; a cassette has none, but when the count is off the caller goes the slow
    # way.
    return lines if len(lines) == count else None
