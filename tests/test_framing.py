"""Exact wire bytes and headers of replayed responses, read from a raw socket."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx
import pytest
import yaml

from conftest import CASSETTES, MakeServer, sdk
from tapedeck.server.runner import ServerThread
from tapedeck.wire.sse import encode_event

# --- a minimal HTTP/1.1 client that shows the bytes as they are ----------------------------


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    complete: bool  # the chunked body ended with its terminating zero-size chunk

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def names(self) -> list[str]:
        return [k for k, _ in self.headers]


def dechunk(data: bytes) -> tuple[list[bytes], bool]:
    chunks: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return chunks, False
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return chunks, data[end + 2 : end + 4] == b"\r\n"
        start = end + 2
        if len(data) < start + size + 2:
            return chunks, False
        chunks.append(data[start : start + size])
        assert data[start + size : start + size + 2] == b"\r\n"
        pos = start + size + 2


def raw_request(
    base_url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> RawResponse:
    url = urlsplit(base_url)
    assert url.hostname is not None
    assert url.port is not None
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {url.hostname}:{url.port}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    data = b""
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    parsed = []
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.append((name.strip().lower(), value.strip()))
    if ("transfer-encoding", "chunked") in parsed:
        chunks, complete = dechunk(rest)
    else:
        chunks, complete = [rest], True
    return RawResponse(status, parsed, chunks, complete)


def cassette(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


def compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def expected_sse(events: list[dict[str, Any]]) -> bytes:
    out = b""
    for e in events:
        data = e["data"]
        text = data if isinstance(data, str) else compact(data)
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        out += f"event: {e['event']}\n".encode()
        out += "".join(f"data: {line}\n" for line in lines).encode("utf-8")
        out += b"\n"
    return out


def hello_request() -> bytes:
    return json.dumps(cassette("streaming/hello")["interactions"][0]["request"]["body"]).encode()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the SSE body of a shipped example, byte for byte ---------------------------------------


def test_hello_body_is_exactly_the_recorded_events(server: ServerThread) -> None:
    response = raw_request(server.base_url, "POST", "/v1/messages", hello_request())
    assert response.status == 200
    assert response.complete
    events = cassette("streaming/hello")["interactions"][0]["response"]["events"]
    expected = expected_sse(events)
    assert response.body == expected
    # The same, spelled out for the first event.
    assert response.body.startswith(
        b'event: message_start\ndata: {"type":"message_start","message":{"id":'
        b'"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant",'
        b'"content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,'
        b'"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
    )
    assert response.body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    blocks = response.body.split(b"\n\n")
    assert blocks[-1] == b""  # the last event is terminated too
    assert len(blocks) - 1 == len(events) == 8
    for block, event in zip(blocks, events, strict=False):
        assert block.startswith(f"event: {event['event']}\ndata: ".encode())
        assert block.count(b"\n") == 1  # one event line, one data line
    assert b"\r" not in response.body
    assert b": " not in response.body.replace(b"event: ", b"").replace(b"data: ", b"")


def test_hello_headers(server: ServerThread) -> None:
    response = raw_request(server.base_url, "POST", "/v1/messages", hello_request())
    assert response.values("content-type") == ["text/event-stream; charset=utf-8"]
    assert response.values("cache-control") == ["no-cache"]
    assert response.values("content-length") == []
    assert response.values("transfer-encoding") == ["chunked"]
    assert response.values("request-id") == ["req_011Cgz2rBkkGvAfDyQ7P5MzY"]
    assert response.values("x-tapedeck-cassette") == ["streaming/hello"]
    assert response.values("x-tapedeck-source") == ["cassette"]


@pytest.mark.parametrize(
    "name",
    ["streaming/tool-use", "streaming/extended-thinking", "streaming/web-search"],
)
def test_other_examples_are_byte_exact_too(server: ServerThread, name: str) -> None:
    interaction = cassette(name)["interactions"][0]
    body = json.dumps(interaction["request"]["body"]).encode()
    response = raw_request(server.base_url, "POST", "/v1/messages", body)
    assert response.status == 200
    assert response.body == expected_sse(interaction["response"]["events"])
    # web-search has non-ASCII text (°): it must be sent as raw UTF-8, not \u escapes.
    if name == "streaming/web-search":
        assert "72°F".encode() in response.body
        assert b"\\u00b0" not in response.body


def test_json_error_body_is_compact_recorded_json(server: ServerThread) -> None:
    interaction = cassette("errors/overloaded-529")["interactions"][0]
    body = json.dumps(interaction["request"]["body"]).encode()
    response = raw_request(server.base_url, "POST", "/v1/messages", body)
    assert response.status == 529
    assert response.body == compact(interaction["response"]["body"]).encode()
    assert response.values("content-type") == ["application/json"]
    assert response.values("x-should-retry") == ["true"]
    assert response.values("cache-control") == []


# --- custom cassettes: raw data, non-ASCII, headers ----------------------------------------

UNICODE_TEXT = "héllo — 日本語 🎉 \u2028 done"

FRAMING = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body: {model: m, max_tokens: 8, stream: true, messages: [{role: user, content: framing}]}
    response:
      status: 200
      headers:
        request-id: req_framing
        anthropic-ratelimit-requests-limit: "4000"
        anthropic-ratelimit-requests-remaining: "3999"
        connection: keep-alive
        keep-alive: timeout=5
        transfer-encoding: chunked
        content-length: "99999"
        content-encoding: gzip
        date: "Mon, 01 Jan 2024 00:00:00 GMT"
        proxy-connection: keep-alive
        te: trailers
        trailer: x-checksum
        upgrade: h2c
        proxy-authenticate: Basic
        x-multi: [one, two]
      events:
        - event: message_start
          at_ms: 0
          data:
            type: message_start
            message:
              id: msg_framing
              type: message
              role: assistant
              content: []
              model: m
              stop_reason: null
              stop_sequence: null
              usage: {input_tokens: 1, output_tokens: 1}
        - event: note
          at_ms: 0
          data: "line one\\nline two\\r\\nline three\\rline four"
        - event: content_block_start
          at_ms: 0
          data: {type: content_block_start, index: 0, content_block: {type: text, text: ""}}
        - event: content_block_delta
          at_ms: 0
          data:
            type: content_block_delta
            index: 0
            delta: {type: text_delta, text: "%s"}
        - event: raw
          at_ms: 0
          data: "not json: {]"
        - event: content_block_stop
          at_ms: 0
          data: {type: content_block_stop, index: 0}
        - event: message_stop
          at_ms: 0
          data: {type: message_stop}
  - request:
      method: POST
      path: /v1/messages
      body: {model: m, max_tokens: 8, messages: [{role: user, content: json headers}]}
    response:
      status: 200
      headers:
        request-id: req_json
        content-length: "99999"
        content-encoding: gzip
        transfer-encoding: chunked
        date: "Mon, 01 Jan 2024 00:00:00 GMT"
        connection: keep-alive
      body:
        id: msg_json
        type: message
        role: assistant
        model: m
        content: [{type: text, text: "%s"}]
        stop_reason: end_turn
        stop_sequence: null
        usage: {input_tokens: 1, output_tokens: 1}
""" % ((UNICODE_TEXT.replace("\u2028", "\\u2028"),) * 2)

FRAMING_BODY = {
    "model": "m",
    "max_tokens": 8,
    "stream": True,
    "messages": [{"role": "user", "content": "framing"}],
}
JSON_BODY = {
    "model": "m",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "json headers"}],
}


@pytest.fixture
def framing_server(tmp_path: Path, make_server: MakeServer) -> Any:
    write(tmp_path / "framing.yaml", FRAMING)
    with make_server(tmp_path) as s:
        yield s


def test_multiline_raw_data_and_utf8(framing_server: ServerThread) -> None:
    response = raw_request(
        framing_server.base_url, "POST", "/v1/messages", json.dumps(FRAMING_BODY).encode()
    )
    assert response.status == 200
    body = response.body
    assert (
        b"event: note\ndata: line one\ndata: line two\ndata: line three\ndata: line four\n\n"
        in body
    )
    assert b"event: raw\ndata: not json: {]\n\n" in body
    delta = compact(
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": UNICODE_TEXT},
        }
    )
    assert f"event: content_block_delta\ndata: {delta}\n\n".encode() in body
    assert UNICODE_TEXT.encode("utf-8") in body
    assert b"\\u" not in body
    assert body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    doc = yaml.safe_load(FRAMING)
    assert body == expected_sse(doc["interactions"][0]["response"]["events"])


def test_sdk_decoder_reads_multiline_data_and_unicode(framing_server: ServerThread) -> None:
    kwargs = {k: v for k, v in FRAMING_BODY.items() if k != "stream"}
    with sdk(framing_server) as client:
        with client.messages.with_streaming_response.create(**kwargs, stream=True) as response:
            raw = list(anthropic.Stream.raw_events(response.http_response))
        by_name = {e.event: e.data for e in raw}
        assert by_name["note"] == "line one\nline two\nline three\nline four"
        assert by_name["raw"] == "not json: {]"
        assert [e.event for e in raw] == [
            "message_start",
            "note",
            "content_block_start",
            "content_block_delta",
            "raw",
            "content_block_stop",
            "message_stop",
        ]
        texts = [
            json.loads(e.data)["delta"]["text"] for e in raw if e.event == "content_block_delta"
        ]
        assert texts == [UNICODE_TEXT]


def test_recorded_hop_by_hop_and_encoding_headers_are_dropped(
    framing_server: ServerThread,
) -> None:
    response = raw_request(
        framing_server.base_url, "POST", "/v1/messages", json.dumps(FRAMING_BODY).encode()
    )
    assert response.status == 200
    assert response.complete
    for dropped in (
        "keep-alive",
        "content-length",
        "content-encoding",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
    ):
        assert response.values(dropped) == [], dropped
    assert "keep-alive" not in [v.lower() for v in response.values("connection")]
    assert response.values("transfer-encoding") == ["chunked"]
    dates = response.values("date")
    assert len(dates) == 1
    assert dates[0] != "Mon, 01 Jan 2024 00:00:00 GMT"
    # What survives: the API's own headers, repeated ones in order, then tapedeck's.
    assert response.values("request-id") == ["req_framing"]
    assert response.values("anthropic-ratelimit-requests-limit") == ["4000"]
    assert response.values("anthropic-ratelimit-requests-remaining") == ["3999"]
    assert response.values("x-multi") == ["one", "two"]
    assert response.values("content-type") == ["text/event-stream; charset=utf-8"]
    assert response.values("cache-control") == ["no-cache"]
    assert response.values("x-tapedeck-cassette") == ["framing"]
    assert response.values("x-tapedeck-source") == ["cassette"]


def test_json_response_drops_recorded_length_and_encoding(framing_server: ServerThread) -> None:
    response = raw_request(
        framing_server.base_url, "POST", "/v1/messages", json.dumps(JSON_BODY).encode()
    )
    assert response.status == 200
    assert response.values("content-encoding") == []
    assert "99999" not in response.values("content-length")
    assert response.values("date") != ["Mon, 01 Jan 2024 00:00:00 GMT"]
    assert response.values("content-type") == ["application/json"]
    assert response.values("request-id") == ["req_json"]
    message = json.loads(response.body)
    assert message["content"][0]["text"] == UNICODE_TEXT
    assert UNICODE_TEXT.encode("utf-8") in response.body
    # The SDK reads the same response without tripping on a bogus length or gzip claim.
    kwargs = dict(JSON_BODY)
    with sdk(framing_server) as client:
        message_obj = client.messages.create(**kwargs)
    assert message_obj.content[0].type == "text"
    assert message_obj.content[0].text == UNICODE_TEXT


def test_httpx_iter_raw_sees_the_same_bytes(server: ServerThread) -> None:
    body = cassette("streaming/hello")["interactions"][0]["request"]["body"]
    with (
        httpx.Client(base_url=server.base_url) as h,
        h.stream("POST", "/v1/messages", json=body) as response,
    ):
        raw = b"".join(response.iter_raw())
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "content-length" not in response.headers
    events = cassette("streaming/hello")["interactions"][0]["response"]["events"]
    assert raw == expected_sse(events)


# --- encode_event, unit level --------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "data", "wire"),
    [
        ("ping", {"type": "ping"}, b'event: ping\ndata: {"type":"ping"}\n\n'),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"text": "a b"}},
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"text":"a b"}}\n\n',
        ),
        ("x", {"text": "é 日本 🎉"}, 'event: x\ndata: {"text":"é 日本 🎉"}\n\n'.encode()),
        ("x", {"text": "two\nlines"}, b'event: x\ndata: {"text":"two\\nlines"}\n\n'),
        ("x", {"s": "\u2028"}, 'event: x\ndata: {"s":"\u2028"}\n\n'.encode()),
        ("x", "raw text", b"event: x\ndata: raw text\n\n"),
        ("x", "a\nb", b"event: x\ndata: a\ndata: b\n\n"),
        ("x", "a\r\nb\rc", b"event: x\ndata: a\ndata: b\ndata: c\n\n"),
        ("x", "trailing\n", b"event: x\ndata: trailing\ndata: \n\n"),
        ("x", "", b"event: x\ndata: \n\n"),
        ("x", None, b"event: x\ndata: null\n\n"),
        ("x", 3, b"event: x\ndata: 3\n\n"),
        ("x", True, b"event: x\ndata: true\n\n"),
        ("x", [1, "two", None], b'event: x\ndata: [1,"two",null]\n\n'),
        ("x", {}, b"event: x\ndata: {}\n\n"),
    ],
)
def test_encode_event(event: str, data: Any, wire: bytes) -> None:
    assert encode_event(event, data) == wire
