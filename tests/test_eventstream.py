"""The AWS event stream codec against botocore's own parser and the SDK's Bedrock decoder."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest
from anthropic.lib.bedrock._stream_decoder import AWSEventStreamDecoder
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from tapedeck.wire.eventstream import (
    EventStreamDecoder,
    chunk_event,
    encode_chunk,
    encode_exception,
    encode_message,
)

EVENT = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}'

MESSAGES = [
    (
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        b"{}",
    ),
    ({":message-type": "event"}, b""),
    ({"a": "", "b" * 255: "é" * 100}, b"\x00\xff" * 1000),
    ({}, b"x"),
]


def botocore_messages(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


@pytest.mark.parametrize(("headers", "payload"), MESSAGES)
def test_botocore_reads_what_is_encoded_and_the_decoder_reads_it_back(headers, payload):
    wire = encode_message(headers, payload)
    assert botocore_messages(wire) == [(headers, payload)]
    decoder = EventStreamDecoder()
    decoded = decoder.feed(wire)
    assert [(m.headers, m.payload) for m in decoded] == [(headers, payload)]
    assert decoder.error is None
    assert decoder.pending == 0


def test_messages_split_at_every_byte_decode_the_same():
    wire = b"".join(encode_message(h, p) for h, p in MESSAGES)
    decoder = EventStreamDecoder()
    decoded = [m for i in range(len(wire)) for m in decoder.feed(wire[i : i + 1])]
    assert [(m.headers, m.payload) for m in decoded] == MESSAGES
    assert decoder.error is None


def test_a_chunk_is_what_the_sdk_decoder_turns_back_into_the_event():
    wire = encode_chunk(EVENT)
    (sse,) = AWSEventStreamDecoder().iter_bytes(iter([wire]))
    assert sse.event == "content_block_delta"
    assert sse.data == EVENT.decode()
    (message,) = EventStreamDecoder().feed(wire)
    assert json.loads(message.payload) == {"bytes": base64.b64encode(EVENT).decode()}
    assert chunk_event(message) == EVENT


def test_an_exception_message_is_the_sdk_decoders_error_event():
    wire = encode_exception("modelStreamErrorException", {"message": "Overloaded"})
    (sse,) = AWSEventStreamDecoder().iter_bytes(iter([wire]))
    assert sse.event == "error"
    assert json.loads(sse.data) == {
        "type": "error",
        "error": {"type": "modelStreamErrorException", "message": "Overloaded"},
    }
    (message,) = EventStreamDecoder().feed(wire)
    assert chunk_event(message) is None
    assert message.headers[":message-type"] == "exception"


def typed_header_message() -> bytes:
    """A message with every header value type botocore knows, built by hand."""
    raw = b""
    for name, kind, value in [
        (b"t", 0, b""),
        (b"f", 1, b""),
        (b"byte", 2, b"\x07"),
        (b"short", 3, b"\x00\x07"),
        (b"int", 4, struct.pack("!i", 7)),
        (b"long", 5, struct.pack("!q", 7)),
        (b"bytes", 6, b"\x00\x02ab"),
        (b"ts", 8, struct.pack("!q", 7)),
        (b"uuid", 9, bytes(range(16))),
    ]:
        raw += bytes([len(name)]) + name + bytes([kind]) + value
    total = 12 + len(raw) + 4
    prelude = struct.pack("!II", total, len(raw))
    head = prelude + struct.pack("!I", zlib.crc32(prelude)) + raw
    return head + struct.pack("!I", zlib.crc32(head))


def test_every_header_type_is_skipped_over_correctly():
    wire = typed_header_message() + encode_message({"after": "x"}, b"p")
    (first, second) = EventStreamDecoder().feed(wire)
    assert first.headers["t"] is True
    assert first.headers["f"] is False
    assert first.headers["bytes"] == b"ab"
    assert set(first.headers) == set(botocore_messages(wire)[0][0])
    assert second.headers == {"after": "x"}


def corrupt(wire: bytes, at: int) -> bytes:
    return wire[:at] + bytes([wire[at] ^ 1]) + wire[at + 1 :]


GOOD = encode_message({":message-type": "event"}, b"payload")


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (corrupt(GOOD, 0), "prelude's CRC"),
        (corrupt(GOOD, 9), "prelude's CRC"),
        (corrupt(GOOD, len(GOOD) - 6), "message's CRC"),
        (corrupt(GOOD, len(GOOD) - 1), "message's CRC"),
    ],
)
def test_corrupt_bytes_stop_the_decoder_as_they_make_botocore_raise(wire, reason):
    with pytest.raises(ChecksumMismatch):
        botocore_messages(wire)
    decoder = EventStreamDecoder()
    assert decoder.feed(wire) == []
    assert reason in (decoder.error or "")
    assert decoder.feed(GOOD) == []


def test_limits_are_checked_from_the_prelude_before_the_body_arrives():
    wire = encode_message({}, b"x" * 100)
    decoder = EventStreamDecoder(max_payload=99)
    assert decoder.feed(wire[:12]) == []
    assert "over 99" in (decoder.error or "")


def test_a_total_too_short_for_its_headers_is_refused():
    prelude = struct.pack("!II", 16, 10)
    decoder = EventStreamDecoder()
    decoder.feed(prelude + struct.pack("!I", zlib.crc32(prelude)))
    assert "cannot hold its headers" in (decoder.error or "")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_the_decoder_never_raises(pieces, with_good_prelude):
    decoder = EventStreamDecoder()
    if with_good_prelude:
        decoder.feed(GOOD[:12])
    for piece in pieces:
        for message in decoder.feed(piece):
            chunk_event(message)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=40))
def test_corrupting_a_valid_frame_never_raises(payload, at):
    wire = encode_message({":message-type": "event", "x": "y"}, payload)
    decoder = EventStreamDecoder()
    for message in decoder.feed(corrupt(wire, min(at, len(wire) - 1))):
        chunk_event(message)


def framed(raw_headers: bytes, payload: bytes) -> bytes:
    """Arbitrary header bytes in a frame whose lengths and CRCs are right."""
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    head = prelude + struct.pack("!I", zlib.crc32(prelude)) + raw_headers + payload
    return head + struct.pack("!I", zlib.crc32(head))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=20))
def test_arbitrary_headers_in_a_valid_frame_never_raise(raw_headers, payload):
    decoder = EventStreamDecoder()
    messages = decoder.feed(framed(raw_headers, payload))
    assert len(messages) + (decoder.error is not None) == 1
