"""Event order: ``serve`` refuses a stream an SDK cannot assemble, with the words and line
``lint`` gives it, and serves every stream the real API can send to the real SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import yaml

from conftest import CASSETTES, ROOT, MakeServer, sdk
from tapedeck.cassette import fast_yaml
from tapedeck.cassette.files import cassette_files
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.errors import CassetteError

TAPEDECK = str(Path(sys.executable).parent / "tapedeck")
Event = tuple[str, Any]

MS: Event = (
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    },
)
START: Event = (
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
DELTA: Event = (
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
)
STOP_BLOCK: Event = ("content_block_stop", {"type": "content_block_stop", "index": 0})
MD: Event = (
    "message_delta",
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 2},
    },
)
STOP: Event = ("message_stop", {"type": "message_stop"})
PING: Event = ("ping", {"type": "ping"})
ERROR: Event = (
    "error",
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
)
GOOD = [MS, START, DELTA, STOP_BLOCK, MD, STOP]


def text_of(content: str, events: list[Event], end: str = "complete") -> str:
    """A one-interaction cassette answering ``content``, written in block style (so the fast
    YAML path reads it), each event's ``event:`` on a line of its own."""
    response: dict[str, Any] = {
        "status": 200,
        "headers": {"content-type": "text/event-stream"},
        "events": [{"event": name, "at_ms": 0, "data": data} for name, data in events],
    }
    if end != "complete":
        response["end"] = end
    request = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": content}]}
    document = {
        "version": 1,
        "interactions": [{"request": {"method": "POST", "path": "/v1/messages", "body": request}}],
    }
    document["interactions"][0]["response"] = response
    copied = json.loads(json.dumps(document))  # no shared objects: YAML would alias them
    return yaml.safe_dump(copied, sort_keys=False, default_flow_style=False)


def event_line(text: str, index: int) -> int:
    """The line of event ``index``'s ``event:`` key."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if "- event: " in line]
    return lines[index]


def where(index: int, field: str = "") -> str:
    return f"interactions[0].response.events[{index}]{field}"


#: Streams an SDK cannot assemble: the event that breaks them, and what serve says.
BROKEN: dict[str, tuple[list[Event], int, str]] = {
    "delta-before-block-start": (
        [MS, DELTA, START, STOP_BLOCK, MD, STOP],
        1,
        "content_block_delta for block 0 before its content_block_start (an SDK assembling "
        "the message fails here: the Python SDK raises IndexError); move block 0's "
        "content_block_start before it",
    ),
    "misspelt-name": (
        [MS, START, DELTA, ("content_block_stopp", STOP_BLOCK[1]), MD, STOP],
        3,
        "unknown event name 'content_block_stopp'; did you mean 'content_block_stop'? (the SDKs "
        "skip events they do not know, so this one would be lost)",
    ),
    "block-before-message-start": (
        [PING, START, MS, DELTA, STOP_BLOCK, MD, STOP],
        1,
        "content_block_start before message_start (an SDK builds the message from "
        "message_start: it fails on this event or drops it); put message_start first",
    ),
    "second-message-start": (
        [MS, START, DELTA, STOP_BLOCK, MS, MD, STOP],
        4,
        "second message_start (a stream holds one message: the TypeScript SDK throws "
        "'Unexpected event order'); remove it, or give the second message an interaction of "
        "its own",
    ),
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast-yaml", "line-tracking"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_loading_for_serving_refuses_it_at_the_events_line(
    tmp_path: Path, case: str, fast: bool
) -> None:
    events, index, message = BROKEN[case]
    text = text_of("hi", events)
    if not fast:  # a tag the fast parser leaves to the line-tracking loader
        text = text.replace("version: 1", "version: !!int 1")
    assert (fast_yaml.load(text) is not None) is fast
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    field = ".event" if case == "misspelt-name" else ""

    with pytest.raises(CassetteError) as caught:
        load_cassette(path, "broken")
    assert (
        str(caught.value) == f"{path}:{event_line(text, index)}: {where(index, field)}: {message}"
    )
    parse_cassette(text, str(path), "broken")  # parsing alone (no order asked) accepts it


def test_serve_refuses_each_broken_stream_on_first_use_with_the_line_lint_gives(
    tmp_path: Path, make_server: MakeServer
) -> None:
    """serve checks a stream's event order when the stream is first used (start-up reads
    every file but the middle of its streams, docs/cassettes.md "What is checked when"): the
    request gets a 500 with the line lint gives, nothing of the stream, and so does every
    later one; the rest of the library is served. lint reports them all up front."""
    library = tmp_path / "cassettes"
    library.mkdir()
    expected = {}
    for case, (events, index, message) in BROKEN.items():
        text = text_of(case, events)
        path = library / f"{case}.yaml"
        path.write_text(text, encoding="utf-8")
        field = ".event" if case == "misspelt-name" else ""
        expected[case] = f"{path}:{event_line(text, index)}: {where(index, field)}: {message}"
    (library / "good.yaml").write_text(text_of("good", GOOD), encoding="utf-8")

    with (
        make_server(library, index_cache=tmp_path / "cache") as server,
        httpx2.Client(base_url=server.base_url, timeout=30) as client,
    ):
        for case in [*BROKEN, *BROKEN, "good"]:
            body = {
                "model": "m",
                "max_tokens": 16,
                "stream": True,
                "messages": [{"role": "user", "content": case}],
            }
            answer = client.post(
                "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
            )
            if case == "good":
                assert answer.status_code == 200
                continue
            assert answer.status_code == 500, case
            assert answer.json()["error"]["message"] == f"tapedeck: cassette {expected[case]}"

    lint = subprocess.run([TAPEDECK, "lint", str(library)], capture_output=True, text=True)
    assert lint.returncode == 1
    assert set(expected.values()) <= set(lint.stdout.splitlines())  # the same words and lines


#: Streams the real API can send (or a recording can hold): served, and read by the SDK.
VALID: dict[str, tuple[list[Event], str]] = {
    "pings-anywhere": (
        [PING, MS, PING, START, PING, DELTA, PING, STOP_BLOCK, PING, MD, PING, STOP, PING],
        "complete",
    ),
    "error-first": ([PING, ERROR], "complete"),
    "error-mid-block": ([MS, START, DELTA, ERROR], "complete"),
    "cut-mid-block": ([MS, PING, START, DELTA], "disconnect"),
    "ends-before-message-stop": ([MS, START, DELTA], "complete"),
    "unknown-new-event": (
        [MS, ("message_annotation", {"type": "message_annotation"}), *GOOD[1:]],
        "complete",
    ),
}


def test_every_valid_stream_is_served_to_the_sdk(tmp_path: Path, make_server: MakeServer) -> None:
    for case, (events, end) in VALID.items():
        (tmp_path / f"{case}.yaml").write_text(text_of(case, events, end), encoding="utf-8")

    def final_text(case: str) -> str:
        with client.messages.stream(
            model="m", max_tokens=16, messages=[{"role": "user", "content": case}]
        ) as stream:
            return stream.get_final_text()

    with make_server(tmp_path) as server, sdk(server) as client:
        assert final_text("pings-anywhere") == "Hi"
        assert final_text("unknown-new-event") == "Hi"
        assert final_text("ends-before-message-stop") == "Hi"  # the partial message
        for case in ("error-first", "error-mid-block"):
            with pytest.raises(anthropic.APIStatusError) as caught:
                final_text(case)
            assert caught.value.type == "overloaded_error"
        with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
            final_text("cut-mid-block")


def test_the_shipped_cassettes_load_for_serving() -> None:
    files = cassette_files(CASSETTES)
    assert len(files) == 7
    for path in files:
        load_cassette(path, path.stem)
    assert len(CassetteLibrary.load(CASSETTES)) == 7


def test_the_docs_example_of_a_refused_stream_is_what_serve_says(tmp_path: Path) -> None:
    """docs/cassettes.md shows one refusal: it must stay the loader's own words."""
    _, index, message = BROKEN["delta-before-block-start"]
    docs = (ROOT / "docs" / "cassettes.md").read_text(encoding="utf-8")
    assert f"{where(index)}: {message}" in docs
