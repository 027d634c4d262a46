"""Folding a Messages event stream into a Message, and splitting a Message into events.

The official SDK's own accumulator (``anthropic.lib.streaming._messages.accumulate_event``)
is the reference: whatever it assembles from a stream, ``assemble`` must assemble too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from conftest import CASSETTES
from tapedeck.cassette.message_stream import assemble, split_text, synthesize
from tapedeck.errors import StreamError

STREAMING = CASSETTES / "streaming"
STREAMING_FILES = sorted(STREAMING.glob("*.yaml"))

Events = list[tuple[str, Any]]


def cassette_events(path: Path) -> Events:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(e["event"], e["data"]) for e in doc["interactions"][0]["response"]["events"]]


def drop_none(value: Any) -> Any:
    """``value`` without null object members, as ``model_dump(exclude_none=True)`` leaves it."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def sdk_assemble(events: Events) -> dict[str, Any]:
    """What the SDK's ``MessageStream`` assembles from these events.

    The SDK's stream skips ``ping`` before the accumulator sees it (and raises on ``error``),
    so those are not fed to it. Its snapshot is a pydantic model; fields the wire did not
    send come out as their ``None`` defaults (``container``, ``stop_details`` — which every
    ``message_delta`` sets, ``diagnostics``, a text block's ``citations`` and
    ``parsed_output``, optional ``usage`` counts), so the dump leaves out nulls and the
    comparisons below strip nulls on our side too (the wire's own nulls, such as
    ``stop_sequence`` or a search result's ``page_age``, go with them).
    """
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, data in events:
        if name == "ping":
            continue
        snapshot = accumulate_event(
            event=copy.deepcopy(data), current_snapshot=snapshot, json_bufs=json_bufs
        )
    assert snapshot is not None
    dumped: dict[str, Any] = snapshot.model_dump(exclude_none=True)
    return dumped


# --- assemble, against the SDK -------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMING_FILES, ids=[p.stem for p in STREAMING_FILES])
def test_assemble_matches_the_sdk_on_shipped_cassettes(path: Path) -> None:
    events = cassette_events(path)
    assembled = assemble(events)
    assert drop_none(assembled) == sdk_assemble(events)
    # And it is a valid Message as the SDK types it.
    Message.model_validate(assembled)


def test_shipped_cassettes_cover_every_block_type() -> None:
    kinds = {
        block["type"]
        for path in STREAMING_FILES
        for block in assemble(cassette_events(path))["content"]
    }
    assert kinds >= {"text", "tool_use", "thinking", "server_tool_use", "web_search_tool_result"}


@pytest.mark.parametrize("path", STREAMING_FILES, ids=[p.stem for p in STREAMING_FILES])
def test_shipped_cassettes_round_trip_through_synthesize(path: Path) -> None:
    message = assemble(cassette_events(path))
    assert assemble(synthesize(message)) == message


def test_assemble_does_not_mutate_its_input() -> None:
    events = cassette_events(STREAMING / "tool-use.yaml")
    before = copy.deepcopy(events)
    message = assemble(events)
    message["content"][0]["text"] += "changed"
    message["usage"]["output_tokens"] = -1
    assert events == before


def test_tool_input_with_no_fragments_but_empty_ones_is_an_empty_object() -> None:
    events: Events = [
        ("message_start", {"message": {"id": "m", "content": [], "usage": {}}}),
        (
            "content_block_start",
            {"index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
        ),
        (
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
        ),
        ("content_block_stop", {"index": 0}),
    ]
    assert assemble(events)["content"] == [
        {"type": "tool_use", "id": "t", "name": "f", "input": {}}
    ]


def test_usage_is_cumulative_and_merged() -> None:
    events: Events = [
        (
            "message_start",
            {
                "message": {
                    "id": "m",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1},
                }
            },
        ),
        ("message_delta", {"delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 5}}),
        (
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7, "input_tokens": 12, "cache_read_input_tokens": None},
            },
        ),
    ]
    message = assemble(events)
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None
    assert message["usage"] == {
        "input_tokens": 12,
        "cache_read_input_tokens": 4,
        "output_tokens": 7,
    }


def test_ping_unknown_events_and_unknown_deltas_are_ignored() -> None:
    events = cassette_events(STREAMING / "hello.yaml")
    unknown_delta = ("content_block_delta", {"index": 0, "delta": {"type": "future_delta"}})
    noisy: Events = [
        events[0],
        ("ping", {"type": "ping"}),
        ("future_event", "not even JSON"),
        *events[1:3],
        unknown_delta,
        *events[3:],
    ]
    assert assemble(noisy) == assemble(events) == assemble([e for e in events if e[0] != "ping"])


# --- errors --------------------------------------------------------------------------------


def test_an_error_event_raises_stream_error_with_its_data() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = cassette_events(STREAMING / "hello.yaml")[:3]
    with pytest.raises(StreamError) as caught:
        assemble([*events, ("error", error)])
    assert caught.value.data == error
    assert caught.value.type == "overloaded_error"
    assert caught.value.message == "Overloaded"
    assert "overloaded_error" in str(caught.value)


def test_a_stream_without_message_start_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no message_start"):
        assemble([("ping", {"type": "ping"}), ("message_stop", {"type": "message_stop"})])
    with pytest.raises(ValueError, match="no message_start"):
        assemble([])


def test_a_block_event_before_message_start_is_a_value_error() -> None:
    events = cassette_events(STREAMING / "hello.yaml")
    with pytest.raises(ValueError, match="does not start with message_start"):
        assemble(events[1:])


def test_malformed_tool_input_names_the_block() -> None:
    events = cassette_events(STREAMING / "tool-use.yaml")
    broken: Events = []
    for name, data in events:
        delta = data.get("delta", {}) if isinstance(data, dict) else {}
        if delta.get("type") == "input_json_delta" and delta["partial_json"]:
            data = {**data, "delta": {**delta, "partial_json": delta["partial_json"] + "}"}}
        broken.append((name, data))
    with pytest.raises(ValueError, match=r"content block 1: tool input is not valid JSON"):
        assemble(broken)


def test_a_delta_for_a_block_never_started_is_a_value_error() -> None:
    start = cassette_events(STREAMING / "hello.yaml")[0]
    delta = ("content_block_delta", {"index": 2, "delta": {"type": "text_delta", "text": "x"}})
    with pytest.raises(ValueError, match="block 2 before its content_block_start"):
        assemble([start, delta])


def test_a_malformed_delta_is_a_value_error() -> None:
    events = cassette_events(STREAMING / "hello.yaml")[:3]
    delta = ("content_block_delta", {"index": 0, "delta": {"type": "text_delta"}})
    with pytest.raises(ValueError, match="content block 0: malformed delta"):
        assemble([*events, delta])


# --- synthesize and the round trip ----------------------------------------------------------

USAGE = {
    "input_tokens": 25,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 57,
    "service_tier": "standard",
}


def message(
    *content: dict[str, Any], stop_reason: str = "end_turn", **usage: Any
) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {**USAGE, **usage},
    }


CITATION = {
    "type": "web_search_result_location",
    "cited_text": "Sunny, with a high of 72°F and winds from the west at 5 mph.",
    "url": "https://weather.example/nyc",
    "title": "NYC weather today",
    "encrypted_index": "EpMBCioIAxgCIiQ4ODk4YTFkYy0yMTNkLTRhNmYtOTljYi03ZTBlNTUzZDc0NWQSDFZ2",
}

SAMPLES = {
    "text": message(
        {"type": "text", "text": "Hello! How can I help you today? I'm Claude, an assistant."}
    ),
    "empty-text": message({"type": "text", "text": ""}, output_tokens=1),
    "tool-use": message(
        {"type": "text", "text": "Let me check the weather in San Francisco for you."},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "°C", "days": [1, 2], "x": 1.5},
        },
        {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
        stop_reason="tool_use",
    ),
    "thinking": message(
        {
            "type": "thinking",
            "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453\n"
            "2. 453 = 400 + 50 + 3",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"},
        {"type": "text", "text": "27 * 453 = 12,231"},
    ),
    "web-search": message(
        {"type": "text", "text": "I'll check the current weather in New York City for you."},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
            "name": "web_search",
            "input": {"query": "weather NYC today"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
            "content": [
                {
                    "type": "web_search_result",
                    "title": "NYC weather today",
                    "url": "https://weather.example/nyc",
                    "encrypted_content": "Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k",
                    "page_age": None,
                }
            ],
        },
        {"type": "text", "text": "Here's the current weather: ", "citations": None},
        {
            "type": "text",
            "text": "it is sunny with a high of 72°F",
            "citations": [CITATION, {**CITATION, "cited_text": "Light winds."}],
        },
        {"type": "text", "text": ".", "citations": []},
        server_tool_use={"web_search_requests": 1, "web_fetch_requests": 0},
    ),
    "document-citations": message(
        {
            "type": "text",
            "text": "the grass is green",
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "The grass is green.",
                    "document_index": 0,
                    "document_title": "Example Document",
                    "start_char_index": 0,
                    "end_char_index": 20,
                    "file_id": None,
                }
            ],
        },
        stop_reason="stop_sequence",
    ),
}
SAMPLES["document-citations"]["stop_sequence"] = "\n\nHuman:"


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_are_valid_messages(name: str) -> None:
    Message.model_validate(SAMPLES[name])


@pytest.mark.parametrize("chunks", [(12, 16), (1, 1), (3, 5), (1000, 1000)])
@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip(name: str, chunks: tuple[int, int]) -> None:
    original = SAMPLES[name]
    kept = copy.deepcopy(original)
    events = synthesize(original, text_chunk=chunks[0], json_chunk=chunks[1])
    assert original == kept  # not mutated
    assert assemble(events) == original
    # Framed as JSON and parsed back, as a client would see it.
    assert assemble([(n, json.loads(json.dumps(d))) for n, d in events]) == original


@pytest.mark.parametrize("name", SAMPLES)
def test_the_sdk_assembles_synthesized_streams_back(name: str) -> None:
    original = SAMPLES[name]
    assert sdk_assemble(synthesize(original)) == drop_none(original)


def test_synthesized_events_share_nothing_with_the_message() -> None:
    original = SAMPLES["web-search"]
    kept = copy.deepcopy(original)
    for _, data in synthesize(original):
        for value in data.values():
            if isinstance(value, dict):
                value.clear()
    assert original == kept


def test_synthesized_stream_shape() -> None:
    original = SAMPLES["thinking"]
    events = synthesize(original)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)

    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["stop_sequence"] is None
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["input_tokens"] == USAGE["input_tokens"]

    # Per block: start, deltas, stop, with the block's index, in order.
    per_block = [(n, d["index"]) for n, d in events[1:-2]]
    indices = [i for _, i in per_block]
    assert indices == sorted(indices)
    assert [n for n, i in per_block if n != "content_block_delta"] == [
        "content_block_start",
        "content_block_stop",
    ] * 3

    thinking = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert {d["type"] for d in thinking[:-1]} == {"thinking_delta"}
    assert thinking[-1] == {
        "type": "signature_delta",
        "signature": original["content"][0]["signature"],
    }
    first = events[1][1]["content_block"]
    assert first == {"type": "thinking", "thinking": "", "signature": ""}
    redacted = [d for n, d in events if n == "content_block_start" and d["index"] == 1]
    assert redacted[0]["content_block"] == original["content"][1]
    assert not [d for n, d in events if n == "content_block_delta" and d["index"] == 1]

    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == USAGE["output_tokens"]


def test_tool_input_fragments() -> None:
    original = SAMPLES["tool-use"]
    events = synthesize(original, json_chunk=16)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert starts[1]["input"] == {}
    fragments = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["index"] == 1
    ]
    assert fragments[0] == ""
    assert all(0 < len(f) <= 16 for f in fragments[1:])
    assert json.loads("".join(fragments)) == original["content"][1]["input"]


def test_citations_come_as_citations_deltas() -> None:
    events = synthesize(SAMPLES["web-search"])
    cited = [d for n, d in events if n in ("content_block_start", "content_block_delta")]
    cited = [d for d in cited if d["index"] == 4]
    assert cited[0]["content_block"] == {"type": "text", "text": "", "citations": []}
    assert [d["delta"]["type"] for d in cited[1:3]] == ["citations_delta"] * 2
    assert {d["delta"]["type"] for d in cited[3:]} == {"text_delta"}


@pytest.mark.parametrize("size", [1, 2, 5, 12, 40])
def test_split_text_joins_back_and_respects_the_size(size: int) -> None:
    text = "The quick brown fox jumps over the lazy dog.\n\nSupercalifragilistic words, too."
    pieces = split_text(text, size)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= size for p in pieces)


def test_split_text_cuts_after_whitespace() -> None:
    assert split_text("The quick brown fox jumps", 12) == ["The quick ", "brown fox ", "jumps"]
    assert split_text("abcdefghij klm", 4) == ["abcd", "efgh", "ij ", "klm"]
    assert split_text("", 12) == []


def test_chunk_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        synthesize(SAMPLES["text"], text_chunk=0)
    with pytest.raises(ValueError, match="at least 1"):
        synthesize(SAMPLES["text"], json_chunk=0)
