"""The incremental SSE decoder: bytes in as they arrive, complete events out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapedeck.wire.sse import encode_event
from tapedeck.wire.sse_decode import DecodedEvent, SSEDecoder

MESSAGES_STREAM = [
    ("message_start", {"type": "message_start", "message": {"id": "msg_1", "content": []}}),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "é😀"}},
    ),
    ("message_stop", {"type": "message_stop"}),
]
WIRE = b"".join(encode_event(name, data) for name, data in MESSAGES_STREAM)


def decode_all(*chunks: bytes) -> tuple[list[DecodedEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[DecodedEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events, decoder


def pairs(events: list[DecodedEvent]) -> list[tuple[str, str]]:
    return [(e.event, e.data) for e in events]


def test_a_messages_stream_in_one_chunk() -> None:
    events, decoder = decode_all(WIRE)
    assert [(e.event, json.loads(e.data)) for e in events] == MESSAGES_STREAM
    assert not decoder.pending


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\ndata: {}\n") == []
    assert decoder.pending
    assert decoder.feed(b"\n") == [DecodedEvent("ping", "{}")]
    assert not decoder.pending
    assert decoder.feed(b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\n") == [
        DecodedEvent("a", "1"),
        DecodedEvent("b", "2"),
    ]
    assert decoder.pending


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_every_line_ending(eol: str) -> None:
    text = f"event: one{eol}data: 1{eol}{eol}event: two{eol}data: a{eol}data: b{eol}{eol}"
    events, decoder = decode_all(text.encode())
    assert pairs(events) == [("one", "1"), ("two", "a\nb")]
    assert not decoder.pending


def test_mixed_line_endings_in_one_stream() -> None:
    events, _ = decode_all(b"event: a\r\ndata: 1\r\rdata: 2\n\r\nevent: b\rdata: 3\n\n")
    assert pairs(events) == [("a", "1"), ("message", "2"), ("b", "3")]


def test_crlf_split_across_chunks_counts_once() -> None:
    # "\r" ends the first chunk; the "\n" that follows belongs to it, it is not a blank line.
    events, decoder = decode_all(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert pairs(events) == [("message", "a\nb")]
    assert not decoder.pending


def test_cr_at_chunk_end_followed_by_other_text() -> None:
    events, _ = decode_all(b"data: a\r", b"data: b\r", b"\r")
    assert pairs(events) == [("message", "a\nb")]


def test_cr_then_empty_chunk_then_lf() -> None:
    events, _ = decode_all(b"data: a\r", b"", b"\ndata: b\n\n")
    assert pairs(events) == [("message", "a\nb")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_byte_by_byte_gives_the_same_events(eol: bytes) -> None:
    wire = WIRE.replace(b"\n", eol)
    whole, _ = decode_all(wire)
    decoder = SSEDecoder()
    trickled: list[DecodedEvent] = []
    for i in range(len(wire)):
        trickled.extend(decoder.feed(wire[i : i + 1]))
    assert trickled == whole
    assert [(e.event, json.loads(e.data)) for e in trickled] == MESSAGES_STREAM
    assert not decoder.pending


@pytest.mark.parametrize("size", [2, 3, 5, 7, 13])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    wire = (b"\xef\xbb\xbf" + WIRE).replace(b"\n", b"\r\n")
    chunks = [wire[i : i + size] for i in range(0, len(wire), size)]
    events, decoder = decode_all(*chunks)
    assert [(e.event, json.loads(e.data)) for e in events] == MESSAGES_STREAM
    assert not decoder.pending


def test_multibyte_characters_split_across_chunks() -> None:
    wire = 'event: x\ndata: {"t":"é😀"}\n\n'.encode()
    cut = wire.index("😀".encode()) + 2  # in the middle of the emoji
    events, _ = decode_all(wire[:cut], wire[cut:])
    assert pairs(events) == [("x", '{"t":"é😀"}')]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    events, _ = decode_all(b"data: a\xffb\n\n")
    assert pairs(events) == [("message", "a\ufffdb")]


def test_comments_are_skipped() -> None:
    events, decoder = decode_all(b": hello\n:\nevent: a\n: inside\ndata: 1\n\n: trailing\n")
    assert pairs(events) == [("a", "1")]
    assert not decoder.pending


def test_a_comment_alone_dispatches_nothing() -> None:
    events, decoder = decode_all(b": keep-alive\n\n: again\n\n")
    assert events == []
    assert not decoder.pending


def test_multi_line_data_joins_with_newlines() -> None:
    events, _ = decode_all(b"event: e\ndata: first\ndata:\ndata: third\n\n")
    assert pairs(events) == [("e", "first\n\nthird")]


def test_one_space_after_the_colon_is_dropped() -> None:
    events, _ = decode_all(b"data:no space\n\ndata:  two spaces\n\ndata\n\nevent:e\ndata: x \n\n")
    assert pairs(events) == [
        ("message", "no space"),
        ("message", " two spaces"),
        ("message", ""),
        ("e", "x "),
    ]


def test_bom_is_removed_once_at_the_start() -> None:
    events, _ = decode_all(b"\xef\xbb\xbfevent: a\ndata: 1\n\n")
    assert pairs(events) == [("a", "1")]
    events, _ = decode_all(b"\xef", b"\xbb", b"\xbfdata: 1\n\n")
    assert pairs(events) == [("message", "1")]
    # Only the stream's first character: a BOM later is part of the data.
    events, _ = decode_all(b"\xef\xbb\xbfdata: 1\n\n", b"data: \xef\xbb\xbf2\n\n")
    assert pairs(events) == [("message", "1"), ("message", "\ufeff2")]


def test_a_bom_after_an_empty_first_chunk_is_still_the_start() -> None:
    events, _ = decode_all(b"", b"\xef\xbb\xbfdata: 1\n\n")
    assert pairs(events) == [("message", "1")]


def test_unnamed_events_are_message() -> None:
    events, _ = decode_all(b"data: 1\n\nevent:\ndata: 2\n\n")
    assert [e.event for e in events] == ["message", "message"]


def test_an_event_line_without_data_still_dispatches() -> None:
    events, _ = decode_all(b"event: ping\n\n")
    assert pairs(events) == [("ping", "")]


def test_fields_do_not_leak_into_the_next_event() -> None:
    events, _ = decode_all(b"event: a\ndata: 1\nretry: 5\n\ndata: 2\n\n")
    assert events == [DecodedEvent("a", "1", None, 5), DecodedEvent("message", "2")]


def test_id_and_retry() -> None:
    events, _ = decode_all(b"id: 42\nretry: 1500\nevent: e\ndata: x\n\n")
    assert events == [DecodedEvent("e", "x", "42", 1500)]


def test_id_with_nul_and_non_numeric_retry_are_ignored() -> None:
    events, _ = decode_all(b"id: a\x00b\nretry: 1.5\ndata: x\n\nretry: soon\ndata: y\n\n")
    assert events == [DecodedEvent("message", "x"), DecodedEvent("message", "y")]


def test_unknown_fields_are_ignored() -> None:
    events, decoder = decode_all(b"foo: bar\n\nfoo: bar\ndata: x\nEvent: NOPE\n\n")
    assert pairs(events) == [("message", "x")]
    assert not decoder.pending


def test_pending_when_the_stream_ends_mid_event() -> None:
    decoder = SSEDecoder()
    assert not decoder.pending
    decoder.feed(b"event: a\ndata: 1\n\n")
    assert not decoder.pending
    decoder.feed(b'event: content_block_delta\ndata: {"type":')
    assert decoder.pending  # half a line buffered
    decoder.feed(b'"x"}\n')
    assert decoder.pending  # a whole line, but no blank line yet
    assert decoder.feed(b"\n") == [DecodedEvent("content_block_delta", '{"type":"x"}')]
    assert not decoder.pending


def test_pending_after_a_lone_cr_is_not_an_unfinished_event() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: 1\r\n\r")
    assert not decoder.pending


def test_decoding_what_encode_event_writes() -> None:
    data = {"type": "content_block_delta", "delta": {"text": "line one\nline two\r\n"}}
    raw = "first line\nsecond line"
    events, _ = decode_all(encode_event("content_block_delta", data), encode_event("raw", raw))
    assert json.loads(events[0].data) == data
    assert events[1] == DecodedEvent("raw", raw)


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1" * 5000, "-1", "1e3", " 7"])
def test_a_retry_that_is_not_ascii_digits_is_ignored(value: str) -> None:
    (event,) = SSEDecoder().feed(f"retry: {value}\ndata: x\n\n".encode())
    assert event.retry is None
    assert event.data == "x"


_SSE_BYTES = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"\r",
                b"\n",
                b"\r\n",
                b":",
                b"retry:",
                b"retry: \xc2\xb2",
                b"data:",
                b"id:\x00",
                b"event:",
                b"\xef\xbb\xbf",
                b"\xff\xfe",
                b"\xe2\x82",
            ]
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_SSE_BYTES)
def test_no_bytes_make_the_decoder_raise(chunks: list[bytes]) -> None:
    """Whatever an upstream sends, in whatever pieces, decoding never raises, and the same
    bytes in one piece decode to the same events."""
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    whole = SSEDecoder().feed(b"".join(chunks))
    assert events == whole
    for event in events:
        assert isinstance(event.data, str)
        assert event.retry is None or event.retry >= 0
