"""Start-up reads a cassette without the middle of its streams (cassette/skeleton.py): the
index it makes is the one a whole read makes; a layout the scan cannot be sure of is read
whole; a problem outside the cut-out events is reported at start-up, one inside them when
the stream is first used (a 500 naming file:line, before any byte of it is sent); and
``tapedeck lint`` reports both."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CASSETTES, running
from tapedeck.cassette.files import digest_of
from tapedeck.cassette.index import LibraryIndex, _parse_file
from tapedeck.cassette.index_entry import entry_of
from tapedeck.cassette.lazy_events import EventStore, stamp_of
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import parse_cassette
from tapedeck.cassette.skeleton import cut, parse_start
from tapedeck.errors import LibraryError
from tapedeck.tools.lint import lint_file

HELLO = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}
ANTHROPIC = {"anthropic-version": "2023-06-01"}
HELLO_TEXT = (CASSETTES / "streaming/hello.yaml").read_text()


def _same_index(text: str) -> None:
    """The entry start-up makes from ``text`` is the one a whole read makes."""
    started = parse_start(text, "f.yaml", "f")
    assert started is not None, "nothing was cut"
    cassette, counts = started
    whole = parse_cassette(text, "f.yaml", "f", order=True)
    assert entry_of(cassette, (1, 2), counts) == entry_of(whole, (1, 2))


@pytest.mark.parametrize("path", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_stream_indexes_the_same_from_its_skeleton(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if cut(text) is None:
        assert "events:" not in text
    elif "type: enabled" in text:  # thinking: read whole (the last test)
        entry = _parse_file((str(path), "f", "f.yaml"))
        whole = parse_cassette(text, "f.yaml", "f", order=True)
        assert entry == entry_of(whole, stamp_of(path), None, digest_of(str(path)))
    else:
        _same_index(text)


def _events(n: int, indent: str, gap: str = "") -> str:
    items = [
        f"{indent}- event: content_block_delta\n{indent}  at_ms: {i}\n"
        f"{indent}  data: {{type: content_block_delta, index: 0, "
        f"delta: {{type: text_delta, text: 'w{i}'}}}}\n{gap}"
        for i in range(n)
    ]
    start = (
        f"{indent}- event: message_start\n{indent}  at_ms: 0\n{indent}  data:\n"
        f"{indent}    type: message_start\n{indent}    message: {{id: msg_1, type: message, "
        f"role: assistant, content: [], model: m, stop_reason: null, stop_sequence: null, "
        f"usage: {{input_tokens: 1, output_tokens: 1}}}}\n"
        f"{indent}- event: content_block_start\n{indent}  at_ms: 0\n"
        f"{indent}  data: {{type: content_block_start, index: 0, "
        f"content_block: {{type: text, text: ''}}}}\n"
    )
    end = (
        f"{indent}- event: content_block_stop\n{indent}  at_ms: {n}\n"
        f"{indent}  data: {{type: content_block_stop, index: 0}}\n"
        f"{indent}- event: message_stop\n{indent}  at_ms: {n}\n"
        f"{indent}  data: {{type: message_stop}}\n"
    )
    return start + "".join(items) + end


def _interaction(i: int, events: str, after: str = "", first: str = "request") -> str:
    request = (
        f"  request:\n    method: POST\n    path: /v1/messages\n"
        f"    body: {{model: m, max_tokens: 5, messages: [{{role: user, content: q{i}}}]}}\n"
    )
    response = f"  response:\n    status: 200\n    headers: {{x-n: '{i}'}}\n    events:\n"
    response += events + after
    parts = [request, response] if first == "request" else [response, request]
    text = "".join(parts)
    return "-" + text[1:]


@pytest.mark.parametrize(
    "interactions",
    [
        # Indentless items (what tapedeck writes), then the keys that may follow a stream.
        [_interaction(0, _events(5, "    "), "    end: disconnect\n    end_at_ms: 9\n")],
        # Indented items, blank lines and comments between them, several interactions.
        [
            _interaction(0, _events(4, "      ", gap="\n      # a comment\n"), ""),
            _interaction(1, _events(6, "      "), "  recorded_at: '2026-05-01T12:00:00Z'\n"),
        ],
        # The response before the request: the scan must stop at the request.
        [
            _interaction(0, _events(3, "    "), first="response"),
            _interaction(1, _events(3, "    ")),
        ],
        # YAML 1.1 forms the fast loader is not trusted with: the reference loader reads
        # the skeleton, which then keeps every line.
        [
            _interaction(0, _events(3, "    ")).replace("max_tokens: 5", "max_tokens: 0012"),
            _interaction(1, _events(4, "    ")),
        ],
        # The marker's first choice is taken by the text.
        [_interaction(0, _events(3, "    ")).replace("content: q0", "content: tapedeck-cut-0")],
    ],
    ids=["indentless", "indented", "response-first", "reference-loader", "marker-taken"],
)
def test_layouts_index_the_same_from_the_skeleton(interactions: list[str]) -> None:
    _same_index("version: 1\ninteractions:\n" + "".join(interactions))


def test_a_layout_the_scan_misreads_is_read_whole() -> None:
    """An ``events:`` line inside a block text of the request is not a stream: the markers
    are not where the cut put them, so the whole text is read (and nothing is lost)."""
    body = (
        "  request:\n    method: POST\n    path: /v1/messages\n    body:\n"
        "      model: m\n      system: |\n        events:\n        - one\n        - two\n"
        "        - three\n        - four\n"
    )
    text = "version: 1\ninteractions:\n-" + body[1:] + "  response: {status: 200, body: {}}\n"
    assert cut(text) is not None
    assert parse_start(text, "f.yaml", "f") is None
    assert yaml.safe_load(text)["interactions"][0]["request"]["body"]["system"].count("-") == 4


def _broken_middle(root: Path) -> Path:
    """hello.yaml with its fourth event's ``at_ms`` broken: a problem start-up does not see."""
    hello = root / "streaming/hello.yaml"
    text = hello.read_text()
    assert text.count("at_ms: 64\n") == 1
    hello.write_text(text.replace("at_ms: 64\n", "at_ms: soon\n"))
    return hello


def test_a_broken_middle_event_is_reported_on_first_use_not_served(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    shutil.copytree(CASSETTES, root)
    hello = _broken_middle(root)
    line = hello.read_text().splitlines().index("          at_ms: soon") + 1
    with (
        running(root, index_cache=tmp_path / "cache") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        answer = client.post("/v1/messages", json=HELLO, headers=ANTHROPIC)
        again = client.post("/v1/messages", json=HELLO, headers=ANTHROPIC)
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert f"hello.yaml:{line}: interactions[0].response.events[3].at_ms:" in message
    assert again.status_code == 500  # never served from the broken file
    # lint reads the whole file and says the same.
    assert any(p.line == line and "at_ms" in str(p) for p in lint_file(hello))


def test_a_broken_request_is_still_reported_at_start_up(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    (root / "streaming").mkdir(parents=True)
    broken = HELLO_TEXT.replace("max_tokens: 256", "max_tokens: [256")
    (root / "streaming/hello.yaml").write_text(broken)
    with pytest.raises(LibraryError) as caught:
        CassetteLibrary.load(root, index=LibraryIndex(root, None, EventStore()))
    (error,) = caught.value.errors
    assert error.file.endswith("hello.yaml")
    assert error.line > 0
    assert "streaming/hello.yaml" in str(error)


def test_a_thinking_reply_is_read_whole_for_its_signatures(tmp_path: Path) -> None:
    path = CASSETTES / "streaming/extended-thinking.yaml"
    entry = _parse_file((str(path), "t", str(path)))
    cassette = parse_cassette(path.read_text(), str(path), "t", order=True)
    whole = entry_of(cassette, stamp_of(path), None, digest_of(str(path)))
    assert entry == whole
    assert entry["interactions"][0]["response"]["thinking"]


_TEXT = st.text(alphabet=st.sampled_from(list("ab -:#'\"\n\tevents|>[]{},.0")), max_size=30)


@st.composite
def _cassettes(draw: st.DrawFn) -> str:
    """A cassette as a YAML writer could lay it out: random text in every event (line breaks,
    ``- ``, ``events:`` and quotes included), random indentation and line width."""
    interactions = []
    for i in range(draw(st.integers(1, 3))):
        events = [
            {
                "event": "content_block_delta",
                "at_ms": n,
                "data": {"type": "content_block_delta", "index": 0, "text": draw(_TEXT)},
            }
            for n in range(draw(st.integers(0, 6)))
        ]
        response: dict[str, object] = {"status": 200, "events": events}
        if draw(st.booleans()):
            response["end"] = "disconnect"
        interactions.append(
            {
                "request": {"method": "POST", "path": "/v1/x", "body": {"q": draw(_TEXT), "i": i}},
                "response": response,
            }
        )
    return yaml.safe_dump(
        {"version": 1, "interactions": interactions},
        sort_keys=draw(st.booleans()),
        indent=draw(st.sampled_from([2, 4])),
        width=draw(st.sampled_from([20, 80])),
        allow_unicode=True,
        default_flow_style=draw(st.sampled_from([False, None])),
    )


@given(_cassettes())
@settings(max_examples=300, deadline=None)
def test_a_skeleton_is_used_only_where_it_reads_as_the_whole(text: str) -> None:
    """Whatever the layout and text, start-up either indexes a cassette exactly as a whole
    read does, or reads it whole."""
    for layout in (text, text.replace("\n", "\r\n")):  # CRLF line ends are cut too
        started = parse_start(layout, "f.yaml", "f")
        whole = parse_cassette(layout, "f.yaml", "f")
        if started is not None:
            cassette, counts = started
            assert entry_of(cassette, (1, 2), counts) == entry_of(whole, (1, 2))
            lines = [i.line for i in cassette.interactions]
            assert lines == [i.line for i in whole.interactions]


def test_a_quoted_text_continued_like_an_item_is_served_whole(tmp_path: Path) -> None:
    """YAML lets a quoted text go on on a line that looks like a list item; the start-up scan
    counts that line as an event, and the whole read on first use corrects the count and
    serves every event."""
    events = _events(4, "    ").replace(
        "text: 'w1'}}", "text: 'w1'}, x: \"one\n    - two\"}"
    )  # fmt: skip
    text = "version: 1\ninteractions:\n" + _interaction(0, events)
    whole = parse_cassette(text, "f.yaml", "f", order=True).interactions[0].response.events
    assert whole is not None
    assert len(whole) == 8
    root = tmp_path / "cassettes"
    root.mkdir()
    (root / "quoted.yaml").write_text(text)
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q0"}]}
    with (
        running(root, index_cache=tmp_path / "cache") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        lazy = server.library.cassettes["quoted"].interactions[0].response.events
        assert lazy is not None
        assert len(lazy) == 9  # what the scan counted
        answer = client.post("/v1/messages", json={**body, "stream": True}, headers=ANTHROPIC)
        assert answer.status_code == 200
        assert answer.text.count("event: ") == 8
        assert len(lazy) == 8
        assert list(lazy) == list(whole)
