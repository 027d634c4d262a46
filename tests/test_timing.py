"""Pacing: when headers and events reach the client under each timing policy.

Arrival times are measured client-side with ``time.perf_counter()``. Offsets are compared
relative to the first event (so connection set-up does not count) with a loose tolerance.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import pytest

from conftest import MakeServer, sdk
from tapedeck.shaping.timing import Timing

TOLERANCE_MS = 25.0
TIME_TO_HEADERS_MS = 100
AT_MS = [0, 50, 100, 150, 300, 310]

PACED = f"""\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        stream: true
        messages: [{{role: user, content: paced}}]
    response:
      status: 200
      time_to_headers_ms: {TIME_TO_HEADERS_MS}
      events:
        - event: message_start
          at_ms: {AT_MS[0]}
          data:
            type: message_start
            message:
              id: msg_paced
              type: message
              role: assistant
              content: []
              model: m
              stop_reason: null
              stop_sequence: null
              usage: {{input_tokens: 1, output_tokens: 1}}
        - event: content_block_start
          at_ms: {AT_MS[1]}
          data: {{type: content_block_start, index: 0, content_block: {{type: text, text: ""}}}}
        - event: content_block_delta
          at_ms: {AT_MS[2]}
          data: {{type: content_block_delta, index: 0, delta: {{type: text_delta, text: "one"}}}}
        - event: content_block_delta
          at_ms: {AT_MS[3]}
          data: {{type: content_block_delta, index: 0, delta: {{type: text_delta, text: " two"}}}}
        - event: content_block_stop
          at_ms: {AT_MS[4]}
          data: {{type: content_block_stop, index: 0}}
        - event: message_stop
          at_ms: {AT_MS[5]}
          data: {{type: message_stop}}
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        messages: [{{role: user, content: slow json}}]
    response:
      status: 200
      time_to_headers_ms: 150
      body:
        id: msg_json
        type: message
        role: assistant
        model: m
        content: [{{type: text, text: "late"}}]
        stop_reason: end_turn
        stop_sequence: null
        usage: {{input_tokens: 1, output_tokens: 1}}
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        stream: true
        messages: [{{role: user, content: lingering end}}]
    response:
      status: 200
      time_to_headers_ms: 0
      end_at_ms: 200
      events:
        - event: message_start
          at_ms: 0
          data:
            type: message_start
            message:
              id: msg_end
              type: message
              role: assistant
              content: []
              model: m
              stop_reason: null
              stop_sequence: null
              usage: {{input_tokens: 1, output_tokens: 1}}
        - event: message_stop
          at_ms: 20
          data: {{type: message_stop}}
"""

PACED_KWARGS: dict[str, Any] = {
    "model": "m",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "paced"}],
}
JSON_KWARGS: dict[str, Any] = {
    "model": "m",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "slow json"}],
}
END_KWARGS: dict[str, Any] = {
    "model": "m",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "lingering end"}],
}
EVENT_TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_stop",
]


@pytest.fixture
def paced_dir(tmp_path: Path) -> Path:
    (tmp_path / "paced.yaml").write_text(PACED, encoding="utf-8")
    return tmp_path


def measure(client: anthropic.Anthropic, spec: str | None = None) -> tuple[float, list[float]]:
    """(ms until headers, [ms until each event]) for the paced stream, from just before sending."""
    headers = {"x-tapedeck-timing": spec} if spec else None
    # Warm up: open the connection and let the SDK build its event models once, so that
    # neither is counted in the measured request.
    with client.messages.create(
        **PACED_KWARGS, stream=True, extra_headers={"x-tapedeck-timing": "instant"}
    ) as warm_up:
        assert [e.type for e in warm_up] == EVENT_TYPES
    start = time.perf_counter()
    stream = client.messages.create(**PACED_KWARGS, stream=True, extra_headers=headers)
    at_headers = (time.perf_counter() - start) * 1000
    arrivals: list[float] = []
    types: list[str] = []
    with stream:
        for event in stream:
            arrivals.append((time.perf_counter() - start) * 1000)
            types.append(event.type)
    assert types == EVENT_TYPES
    return at_headers, arrivals


def assert_offsets(arrivals: list[float], expected: list[float]) -> None:
    """Each event's arrival relative to the first matches ``expected`` within the tolerance."""
    got = [a - arrivals[0] for a in arrivals]
    want = [e - expected[0] for e in expected]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert abs(g - w) <= TOLERANCE_MS, f"event {i}: at {g:.1f} ms, expected {w:.1f} ms ({got})"


def test_recorded(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s, sdk(s) as c:
        at_headers, arrivals = measure(c)
    assert TIME_TO_HEADERS_MS - 2 <= at_headers <= TIME_TO_HEADERS_MS + 60, at_headers
    assert arrivals[0] - at_headers <= TOLERANCE_MS
    assert_offsets(arrivals, AT_MS)


def test_speed_header_halves_the_gaps(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s, sdk(s) as c:
        at_headers, arrivals = measure(c, "speed=2")
    assert TIME_TO_HEADERS_MS / 2 - 2 <= at_headers <= TIME_TO_HEADERS_MS / 2 + 40, at_headers
    assert_offsets(arrivals, [t / 2 for t in AT_MS])
    assert arrivals[-1] - arrivals[0] < AT_MS[-1] * 0.75


def test_fixed_gap(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s, sdk(s) as c:
        at_headers, arrivals = measure(c, "fixed=20")
    # fixed=MS sends the headers at once and then one event every MS.
    assert at_headers < TIME_TO_HEADERS_MS * 0.75, at_headers
    assert_offsets(arrivals, [20.0 * i for i in range(len(AT_MS))])


def test_server_wide_speed(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("speed=4")) as s, sdk(s) as c:
        at_headers, arrivals = measure(c)
        assert TIME_TO_HEADERS_MS / 4 - 2 <= at_headers <= TIME_TO_HEADERS_MS / 4 + 40
        assert_offsets(arrivals, [t / 4 for t in AT_MS])
        # The header overrides the server's default, both ways.
        at_headers, arrivals = measure(c, "recorded")
        assert at_headers >= TIME_TO_HEADERS_MS - 2
        assert_offsets(arrivals, AT_MS)


def test_header_overrides_instant_server(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir) as s, sdk(s) as c:  # instant by default in tests
        _, arrivals = measure(c, "fixed=30")
        assert_offsets(arrivals, [30.0 * i for i in range(len(AT_MS))])


def test_instant_is_fast(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s, sdk(s) as c:
        _, arrivals = measure(c, "instant")
    total = TIME_TO_HEADERS_MS + AT_MS[-1]
    assert arrivals[-1] < total / 2, arrivals


def test_json_response_waits_time_to_headers(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s, sdk(s) as c:
        for spec, expected in (("recorded", 150.0), ("speed=3", 50.0)):
            start = time.perf_counter()
            message = c.messages.create(**JSON_KWARGS, extra_headers={"x-tapedeck-timing": spec})
            elapsed = (time.perf_counter() - start) * 1000
            assert message.content[0].type == "text"
            assert message.content[0].text == "late"
            assert expected - 2 <= elapsed <= expected + 60, (spec, elapsed)


def test_end_at_ms_holds_the_body_open(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s, sdk(s) as c:
        start = time.perf_counter()
        with c.messages.create(**END_KWARGS, stream=True) as stream:
            arrivals = [(time.perf_counter() - start) * 1000 for _ in stream]
        ended = (time.perf_counter() - start) * 1000
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] <= 20 + TOLERANCE_MS
    # The body stays open until end_at_ms (200 ms after the headers).
    assert ended >= 200 - 2, ended
    assert ended <= 200 + 60, ended


# --- chunk structure, seen on a raw socket --------------------------------------------------


def chunks_of(base_url: str, body: dict[str, Any], spec: str | None = None) -> list[bytes]:
    """The HTTP chunks of a streamed response, exactly as framed on the wire."""
    url = urlsplit(base_url)
    assert url.hostname is not None
    assert url.port is not None
    raw = json.dumps(body).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {url.hostname}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
    )
    if spec:
        head += f"x-tapedeck-timing: {spec}\r\n"
    data = b""
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + raw)
        while part := sock.recv(65536):
            data += part
    headers, _, rest = data.partition(b"\r\n\r\n")
    assert headers.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in headers.lower()
    chunks = []
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return chunks
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


PACED_BODY = {**PACED_KWARGS, "stream": True}


def event_blocks(body: bytes) -> list[bytes]:
    return [b + b"\n\n" for b in body.split(b"\n\n")[:-1]]


def test_instant_sends_the_body_in_one_chunk(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("recorded")) as s:
        chunks = chunks_of(s.base_url, PACED_BODY, "instant")
    assert len(chunks) == 1
    assert len(event_blocks(chunks[0])) == len(AT_MS)


def test_instant_server_default_one_chunk(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("instant")) as s:
        chunks = chunks_of(s.base_url, PACED_BODY)
    assert len(chunks) == 1


def test_paced_sends_one_chunk_per_event(paced_dir: Path, make_server: MakeServer) -> None:
    with make_server(paced_dir, timing=Timing.parse("instant")) as s:
        chunks = chunks_of(s.base_url, PACED_BODY, "fixed=5")
        whole = chunks_of(s.base_url, PACED_BODY)
    assert len(chunks) == len(AT_MS)
    assert chunks == event_blocks(whole[0])
    for chunk, kind in zip(chunks, EVENT_TYPES, strict=True):
        assert chunk.startswith(f"event: {kind}\n".encode())
