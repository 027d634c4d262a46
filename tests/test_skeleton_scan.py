"""The start-up scan that cuts the middle of event lists (cassette/skeleton.py), case by
case: what it cuts and counts on layouts a YAML writer or a person may produce, and that
what start-up then reads is what a whole read gives, or that the text is read whole."""

from __future__ import annotations

import pytest

from tapedeck.cassette.index_entry import entry_of
from tapedeck.cassette.load import parse_cassette
from tapedeck.cassette.skeleton import cut, parse_start


def _item(n: int, indent: str = "    ") -> str:
    return (
        f"{indent}- event: content_block_delta\n{indent}  at_ms: {n}\n"
        f"{indent}  data: {{type: content_block_delta, index: 0, "
        f"delta: {{type: text_delta, text: 'w{n}'}}}}\n"
    )


def _cassette(events: str, after: str = "", request: str = "") -> str:
    return (
        "version: 1\ninteractions:\n- request:\n    method: POST\n    path: /v1/messages\n"
        f"    body: {{model: m, messages: [{{role: user, content: q}}]}}\n{request}"
        f"  response:\n    status: 200\n    events:\n{events}{after}"
    )


FIVE = "".join(_item(n) for n in range(5))

#: (id, text, the item count of each cut stream (None: nothing cut), whether start-up reads
#: the skeleton: True when it must, False when it must read the text whole)
CASES = [
    ("plain", _cassette(FIVE), (5,), True),
    ("indented items", _cassette("".join(_item(n, "      ") for n in range(4))), (4,), True),
    ("two items: not cut", _cassette(_item(0) + _item(1)), None, False),
    (
        "flow style: not cut",
        _cassette("").replace("events:\n", "events: [{event: a}]\n"),
        None,
        False,
    ),
    (
        "keys after the list end it",
        _cassette(FIVE, "    end: disconnect\n    end_at_ms: 9\n"),
        (5,),
        True,
    ),
    (
        "comments and blank lines inside, a comment less indented",
        _cassette(_item(0) + "\n" + _item(1) + "# left\n" + _item(2) + "      # deep\n" + _item(3)),
        (4,),
        True,
    ),
    (
        "a comment after the key",
        _cassette(FIVE).replace("events:\n", "events:   # the stream\n"),
        (5,),
        True,
    ),
    ("no newline at the end", _cassette(FIVE).rstrip("\n"), (5,), True),
    ("CRLF line ends", _cassette(FIVE).replace("\n", "\r\n"), (5,), True),
    (
        "a tab in an item's indentation ends the list there",
        _cassette(_item(0) + _item(1) + _item(2) + "\t" + _item(3)[1:] + _item(4)),
        (3,),
        False,  # the text is not YAML: the whole read reports it
    ),
    (
        "block text holding lines that look like an events list",
        _cassette(
            FIVE,
            request="    headers:\n      x-note: |\n        events:\n        - a\n        - b\n"
            "        - c\n",
        ),
        (3, 5),
        False,  # the first cut is inside the text: the markers are not where meant
    ),
    (
        "block text inside an event holding lines that look like items and keys",
        _cassette(
            _item(0)
            + "    - event: ping\n      at_ms: 1\n      data: |\n        x\n\n        - y\n"
            + "        end: z\n      # after\n"
            + _item(2)
            + _item(3)
        ),
        (4,),
        True,
    ),
    (
        "two interactions, lists at one indentation",
        _cassette(
            FIVE,
            "- request: {method: POST, path: /v1/x}\n  response:\n    status: 200\n"
            "    events:\n" + "".join(_item(n) for n in range(7)),
        ),
        (5, 7),
        True,
    ),
    (
        "the same key deeper in an event is not a stream",
        _cassette(
            _item(0) + "    - event: x\n      at_ms: 1\n      data:\n        events:\n"
            "        - 1\n        - 2\n        - 3\n" + _item(2) + _item(3)
        ),
        (4,),
        True,
    ),
]


@pytest.mark.parametrize(
    ("text", "counts", "skeleton"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_scan_cuts_and_counts(
    text: str, counts: tuple[int, ...] | None, skeleton: bool
) -> None:
    found = cut(text)
    assert (found.counts if found is not None else None) == counts
    started = parse_start(text, "f.yaml", "f")
    assert (started is not None) == skeleton
    if started is not None:
        cassette, by_interaction = started
        whole = parse_cassette(text, "f.yaml", "f")
        assert entry_of(cassette, (1, 2), by_interaction) == entry_of(whole, (1, 2))
        assert cassette.interactions[-1].line == whole.interactions[-1].line


def test_lines_after_a_cut_are_those_of_the_whole_text() -> None:
    second = "- request: {method: GET, path: /v1/models}\n  response: {status: 200, body: {}}\n"
    text = _cassette(FIVE, second)
    skeleton = cut(text)
    assert skeleton is not None
    line = skeleton.text.splitlines().index(second.splitlines()[0]) + 1
    assert skeleton.line_in_file(line) == text.splitlines().index(second.splitlines()[0]) + 1
    kept = cut(text, keep_lines=True)
    assert kept is not None
    assert kept.text.count("\n") == text.count("\n")
