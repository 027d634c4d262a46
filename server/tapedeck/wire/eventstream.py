"""AWS event stream framing (``application/vnd.amazon.eventstream``), as Bedrock streams.

A message is a 12-byte prelude (total length, headers length — both big-endian uint32 — and
the CRC32 of those 8 bytes), the headers, the payload and the CRC32 of everything before it.
A header is a 1-byte name length, the name, a 1-byte value type and the value; Bedrock's
headers are strings (type 7: a 2-byte length and UTF-8 bytes).

Bedrock's ``InvokeModelWithResponseStream`` sends each event of the Messages stream as a
``chunk`` event whose JSON payload is ``{"bytes": "<base64 of the event's JSON>"}``, and a
failure as an ``exception`` message naming the exception in ``:exception-type``
(botocore's ``bedrock-runtime`` model, ``ResponseStream``; the SDKs' Bedrock decoders).

The decoder is incremental and never raises: bytes that are not a valid stream stop it and
leave the reason in :attr:`EventStreamDecoder.error`.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

from ..errors import EventStreamError

PRELUDE_LENGTH = 12
#: The format's own limits (botocore's ``_MAX_HEADERS_LENGTH`` and ``_MAX_PAYLOAD_LENGTH``).
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024

CONTENT_TYPE = "application/vnd.amazon.eventstream"

_STRING = 7
_BYTES = 6
_FIXED_SIZES = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8}  # byte, short, int, long, timestamp
_UUID = 9


@dataclass(frozen=True)
class Message:
    """One decoded message: its headers (string and byte values kept as such) and payload."""

    headers: dict[str, Any]
    payload: bytes


def _crc(data: bytes, start: int = 0) -> int:
    return binascii.crc32(data, start) & 0xFFFFFFFF


def _encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode()
        raw_value = value.encode()
        if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
            raise ValueError(f"event stream header {name!r} is too long")
        out += bytes([len(raw_name)]) + raw_name + bytes([_STRING])
        out += struct.pack("!H", len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message's exact bytes, its headers all strings."""
    raw_headers = _encode_headers(headers)
    total = PRELUDE_LENGTH + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    head = prelude + struct.pack("!I", _crc(prelude)) + raw_headers + payload
    return head + struct.pack("!I", _crc(head))


def encode_chunk(event_json: bytes) -> bytes:
    """A Messages stream event (its JSON bytes) as Bedrock's ``chunk`` event."""
    payload = json.dumps(
        {"bytes": base64.b64encode(event_json).decode("ascii")}, separators=(",", ":")
    ).encode()
    return encode_message(
        {
            ":event-type": "chunk",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        payload,
    )


def encode_exception(exception_type: str, body: dict[str, Any]) -> bytes:
    """An ``exception`` message: ``exception_type`` is the camel-cased member of Bedrock's
    ``ResponseStream`` (``modelStreamErrorException``, ``throttlingException``, …)."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(body, separators=(",", ":")).encode(),
    )


def chunk_event(message: Message) -> bytes | None:
    """The event JSON a ``chunk`` message carries, or None for any other message."""
    if (
        message.headers.get(":message-type") != "event"
        or message.headers.get(":event-type") != "chunk"
    ):
        return None
    try:
        body = json.loads(message.payload)
        return base64.b64decode(body["bytes"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None


def _decode_headers(raw: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    at = 0
    while at < len(raw):
        name_length = raw[at]
        name = raw[at + 1 : at + 1 + name_length]
        at += 1 + name_length
        if len(name) != name_length or at >= len(raw):
            raise EventStreamError("a header runs past the headers")
        kind = raw[at]
        at += 1
        value: Any
        if kind in (0, 1):
            value = kind == 0
        elif kind in (_STRING, _BYTES):
            if at + 2 > len(raw):
                raise EventStreamError("a header runs past the headers")
            (length,) = struct.unpack_from("!H", raw, at)
            value = raw[at + 2 : at + 2 + length]
            at += 2 + length
            if len(value) != length:
                raise EventStreamError("a header runs past the headers")
            if kind == _STRING:
                try:
                    value = value.decode()
                except UnicodeDecodeError:
                    raise EventStreamError("a string header is not UTF-8") from None
        elif kind in _FIXED_SIZES or kind == _UUID:
            size = 16 if kind == _UUID else _FIXED_SIZES[kind]
            value = raw[at : at + size]
            at += size
            if len(value) != size:
                raise EventStreamError("a header runs past the headers")
        else:
            raise EventStreamError(f"unknown header value type {kind}")
        try:
            headers[name.decode()] = value
        except UnicodeDecodeError:
            raise EventStreamError("a header name is not UTF-8") from None
    return headers


class EventStreamDecoder:
    """Decodes messages from bytes given in any pieces; :meth:`feed` returns those completed."""

    def __init__(
        self,
        max_headers: int = MAX_HEADERS_LENGTH,
        max_payload: int = MAX_PAYLOAD_LENGTH,
    ) -> None:
        self._buffer = bytearray()
        self._max_headers = max_headers
        self._max_payload = max_payload
        #: Why decoding stopped, once bytes were not a valid stream; None while they are.
        self.error: str | None = None

    @property
    def pending(self) -> int:
        """Bytes received that are not a complete message yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes; return every message they complete (none once :attr:`error` is set)."""
        if self.error is not None:
            return []
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= PRELUDE_LENGTH:
            try:
                message = self._next()
            except EventStreamError as invalid:
                self.error = str(invalid)
                self._buffer.clear()
                break
            if message is None:
                break
            messages.append(message)
        return messages

    def _next(self) -> Message | None:
        buffer = self._buffer
        total, headers_length, prelude_crc = struct.unpack_from("!III", buffer)
        if _crc(bytes(buffer[:8])) != prelude_crc:
            raise EventStreamError("the prelude's CRC does not match")
        if headers_length > self._max_headers:
            raise EventStreamError(f"headers of {headers_length} bytes, over {self._max_headers}")
        payload_length = total - headers_length - PRELUDE_LENGTH - 4
        if payload_length < 0:
            raise EventStreamError(f"a total length of {total} cannot hold its headers")
        if payload_length > self._max_payload:
            raise EventStreamError(f"a payload of {payload_length} bytes, over {self._max_payload}")
        if len(buffer) < total:
            return None
        frame = bytes(buffer[:total])
        (message_crc,) = struct.unpack_from("!I", frame, total - 4)
        if _crc(frame[: total - 4]) != message_crc:
            raise EventStreamError("the message's CRC does not match")
        headers_end = PRELUDE_LENGTH + headers_length
        headers = _decode_headers(frame[PRELUDE_LENGTH:headers_end])
        del buffer[:total]
        return Message(headers, frame[headers_end : total - 4])
