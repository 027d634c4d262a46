"""A miss describes long values without writing their JSON out whole (cassette/json_text.py):
what it shows, counts and hashes must equal what the whole JSON text gives, for every kind
of value (nested, large, escaped, non-ASCII, keys that are not text)."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
from typing import Any

import pytest

from tapedeck.cassette import json_text
from tapedeck.cassette.differences import _ABSENT, SHOWN_WHOLE, Difference
from tapedeck.observe.miss import DIFFERENCE_VALUE_LIMIT, _small

LONG = "".join(chr(0x20 + i % 95) for i in range(5000))  # every printable ASCII character
VALUES: list[Any] = [
    None,
    True,
    0,
    -1.5,
    float("nan"),
    "",
    "Hi",
    'quote " backslash \\ newline \n tab \t bell \x07 del \x7f nul \x00',
    "é ü 日本 🎉 \u2028 lone \ud800 surrogate",
    LONG,
    LONG + "\n\x01" * 300,
    "é" * 3000 + LONG,
    [],
    {},
    [1, "two", None, [3, {"four": 4}]],
    (1, 2),
    {"a": {"b": [{"c": LONG}, "x" * 70]}, "é": "\x1f" * 40},
    [{"role": "user", "content": LONG}, {"role": "assistant", "content": "ok"}],
    {1: "int key", 2: LONG},  # a key json.dumps turns into text
    {"when": datetime.date(2024, 1, 2), "set": {1}},  # default=str
    ["x" * 59],
    ["x" * 60],
    "x" * 58,
    "x" * 59,
]


def whole(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_parts_equal_those_of_the_whole_text(value: Any) -> None:
    text = whole(value)
    assert json_text.length(value) == len(text)
    for size in (0, 1, 10, SHOWN_WHOLE, 1000, 10**6):
        head, tail = json_text.head(value, size), json_text.tail(value, size)
        if len(text) <= size:
            assert head == tail == text
        else:
            assert len(head) > size
            assert text.startswith(head)
            assert len(tail) > size
            assert text.endswith(tail)
    expected = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode())
    assert json_text.digest(value) == expected.hexdigest()
    if len(text) <= DIFFERENCE_VALUE_LIMIT:
        assert _small(value) is value
    else:
        assert _small(value) == f"({len(text)} chars of JSON)"


def _common_start(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def old_size(got: Any, want: Any) -> int:
    """Difference.size as it was: on the whole texts."""
    if not isinstance(got, str) or not isinstance(want, str):
        got = "" if got is _ABSENT else whole(got)
        want = "" if want is _ABSENT else whole(want)
    start = _common_start(got, want)
    end = _common_start(got[start:][::-1], want[start:][::-1])
    return max(len(got), len(want)) - start - end


def old_shown(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = whole(value)
    return text if len(text) <= SHOWN_WHOLE else text[: SHOWN_WHOLE - 3] + "..."


PAIRS = [
    *itertools.combinations([*VALUES, _ABSENT], 2),
    (LONG, LONG[:100] + "!" + LONG[101:]),
    (LONG, LONG + "more"),
    ("x" * 2000 + "a" + "y" * 3000, "x" * 2000 + "b" + "y" * 3000),
    ([LONG, 1], [LONG, 2]),  # texts and lists agreeing far from both ends
    ([LONG], {"a": LONG}),
    ("a" * 4000, ["a" * 4000]),
]


@pytest.mark.parametrize("pair", PAIRS, ids=range(len(PAIRS)))
def test_differences_read_as_from_the_whole_text(pair: tuple[Any, Any]) -> None:
    got, want = pair
    if got is _ABSENT:
        got, want = want, got
    for a, b in ((got, want), (want, got)):
        difference = Difference("messages[0].content", a, b)
        assert difference.size() == old_size(a, b)
        window = difference.window()
        if window is None:
            assert difference.shown() == f"{difference.field}: {old_shown(a)} != {old_shown(b)}"
        else:
            assert max(len(whole(a)), len(whole(b))) > SHOWN_WHOLE
            assert window.at == _common_start(a, b)


def test_a_value_just_over_the_shown_length_is_windowed() -> None:
    # 58 characters with escapes that make it 61 as JSON: windowed, as before.
    text = "x" * 57 + "\n"
    assert len(whole(text)) == 61
    assert Difference("system", text, text[:-1] + "y").window() is not None
    assert Difference("system", "x" * 58, "x" * 57 + "y").window() is None
