"""Mutated cassettes for fuzzing the loader and ``tapedeck lint``.

A mutation starts from a valid cassette (the shipped ones, and a few written here) and
changes it the way hand edits and broken tools do: a value replaced by something YAML
reads but tapedeck cannot use, a character inserted (control characters included), a
line dropped, doubled or re-indented. :func:`cassette_texts` is the hypothesis strategy.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = sorted((ROOT / "cassettes").rglob("*.yaml"))

#: Values that YAML reads (or nearly reads) but a cassette field cannot hold.
NASTY_VALUES = (
    "!!float x",
    "!!int 1.5",
    "!!bool maybe",
    "!!timestamp x",
    "!!binary aGk=",
    "!!set {a, b}",
    "!!python/object:os.system x",
    "!!str",
    "9" * 4301,
    "9" * 4000,
    "1e400",
    "1.0e+400",
    "-1.0e+400",
    ".nan",
    ".inf",
    "-.inf",
    "-1",
    "0x1F",
    "1_000",
    "~",
    "null",
    "[]",
    "{}",
    "[1, [2, [3]]]",
    "&a [*a]",
    "*nowhere",
    '"\\x1b[31m"',
    '"\\u0000"',
    '"sk-ant-api03-FUZZ-KEY-0000"',
    "yes",
    "2025-01-01",
    "|\n  block",
    "? [a]\n: b",
    "''",
    '"' + "x" * 10_000 + '"',
)
#: Characters to insert: YAML syntax, control characters, odd Unicode.
CHARACTERS = (
    *"\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\t\r\n",
    *":{}[],&*!|>'\"%@`#-?",
    "\ufeff",
    "\u2028",
    "\ud7ff",
    "\U0001f600",
    "é",
)

_EXTRA = (
    """\
version: 1
interactions:
  - request:
      method: GET
      path: /v1/models
      query: {limit: 2, beta: true}
      headers: {anthropic-beta: a,b}
    response:
      status: 200
      headers: {request-id: req_1, x-list: [a, b]}
      time_to_headers_ms: 5
      body: {data: [], has_more: false, first_id: null, last_id: null}
""",
    """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      match: [messages]
      body: {messages: [{role: user, content: hi}]}
    response:
      status: 200
      text: "raw text body"
""",
    """\
version: 1
interactions:
  - request: {method: POST, path: /v1/messages, body: {stream: true}}
    response:
      status: 200
      end: disconnect
      end_at_ms: 30
      events:
        - {event: message_start, at_ms: 0, data: {type: message_start, message: {}}}
        - {event: ping, at_ms: 20.5, data: {type: ping}}
""",
)

BASES = tuple(p.read_text(encoding="utf-8") for p in SHIPPED) + _EXTRA


def _replace_value(text: str, line: int, value: str) -> str:
    lines = text.split("\n")
    i = line % len(lines)
    head, sep, _ = lines[i].partition(": ")
    lines[i] = f"{head}: {value}" if sep else f"{lines[i]} {value}"
    return "\n".join(lines)


def _insert(text: str, position: int, chars: str) -> str:
    i = position % (len(text) + 1)
    return text[:i] + chars + text[i:]


def _drop_line(text: str, line: int) -> str:
    lines = text.split("\n")
    del lines[line % len(lines)]
    return "\n".join(lines)


def _double_line(text: str, line: int) -> str:
    lines = text.split("\n")
    i = line % len(lines)
    lines.insert(i, lines[i])
    return "\n".join(lines)


def _indent(text: str, line: int, by: int) -> str:
    lines = text.split("\n")
    i = line % len(lines)
    lines[i] = " " * by + lines[i] if by > 0 else lines[i][-by:]
    return "\n".join(lines)


def _mutation() -> st.SearchStrategy[tuple[str, int, object]]:
    index = st.integers(min_value=0, max_value=10_000)
    return st.one_of(
        st.tuples(st.just("value"), index, st.sampled_from(NASTY_VALUES)),
        st.tuples(st.just("value"), index, st.text(max_size=12)),
        st.tuples(st.just("insert"), index, st.sampled_from(CHARACTERS)),
        st.tuples(st.just("insert"), index, st.text(max_size=4)),
        st.tuples(st.just("drop"), index, st.none()),
        st.tuples(st.just("double"), index, st.none()),
        st.tuples(st.just("indent"), index, st.sampled_from((-4, -2, -1, 1, 2, 4))),
    )


def apply(text: str, mutations: list[tuple[str, int, object]]) -> str:
    """``text`` with ``mutations`` (as drawn by :func:`cassette_texts`) applied in order."""
    for kind, where, payload in mutations:
        if kind == "value":
            text = _replace_value(text, where, str(payload))
        elif kind == "insert":
            text = _insert(text, where, str(payload))
        elif kind == "drop":
            text = _drop_line(text, where)
        elif kind == "double":
            text = _double_line(text, where)
        elif kind == "indent":
            assert isinstance(payload, int)
            text = _indent(text, where, payload)
    return text


@st.composite
def cassette_texts(draw: st.DrawFn) -> str:
    """A valid cassette with one to four mutations."""
    base = draw(st.sampled_from(BASES))
    return apply(base, draw(st.lists(_mutation(), min_size=1, max_size=4)))
