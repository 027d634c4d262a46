"""Pacing: when headers and events reach the client under each timing policy.

The server runs in a process of its own (``tapedeck serve``) and each part of a response is
stamped with the kernel's receive time (:mod:`stamped`), so neither this process's threads
nor its own scheduling move the times measured. A part may never come before it is due;
the best of a few runs must come close to when it is due (:func:`stamped.paced_as`), with a
margin well short of what any other timing policy would give: each test fails if the policy
it names is not applied.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import MakeServer
from stamped import CLOCK_STEP_MS, EARLY_MS, RUNS, Exchange, Serve, exchange, fmt, paced_as, serving
from tapedeck.shaping.timing import Timing

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
PACED_BODY = {**PACED_KWARGS, "stream": True}


@pytest.fixture
def paced_dir(tmp_path: Path) -> Path:
    (tmp_path / "paced.yaml").write_text(PACED, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Serve]]:
    """``tapedeck serve`` over the paced cassette, one process per server-wide timing."""
    root = tmp_path_factory.mktemp("paced")
    (root / "paced.yaml").write_text(PACED, encoding="utf-8")
    specs = ("recorded", "speed=4", "instant")
    with serving(*(Serve(root, "--timing", spec) for spec in specs)) as servers:
        for server in servers:  # the first response of a process pays its one-time costs
            exchange(server.base_url, body=PACED_BODY, headers={"x-tapedeck-timing": "instant"})
        yield dict(zip(specs, servers, strict=True))


def stream(server: Serve, spec: str | None = None) -> Callable[[], Exchange]:
    """One paced stream from ``server`` (with ``x-tapedeck-timing: spec`` if given)."""
    headers = {"x-tapedeck-timing": spec} if spec else {}

    def run() -> Exchange:
        got = exchange(server.base_url, body=PACED_BODY, headers=headers)
        assert got.status == 200, got.body
        assert got.names == EVENT_TYPES
        return got

    return run


def due(headers_ms: float, events_ms: list[float]) -> list[float]:
    """When the headers, each event and the end of a stream are due (ms after sending)."""
    return [headers_ms, *events_ms, events_ms[-1]]


def scaled(speed: float) -> list[float]:
    """The paced stream's due times at ``speed`` (1: as recorded)."""
    headers = TIME_TO_HEADERS_MS / speed
    return due(headers, [headers + at / speed for at in AT_MS])


def fixed(gap_ms: float) -> list[float]:
    """fixed=MS: the headers at once, then one event every MS from the first."""
    return due(0.0, [gap_ms * i for i in range(len(AT_MS))])


def test_recorded(served: dict[str, Serve]) -> None:
    paced_as(stream(served["recorded"]), scaled(1))


def test_speed_header_halves_the_gaps(served: dict[str, Serve]) -> None:
    paced_as(stream(served["recorded"], "speed=2"), scaled(2))


def test_fixed_gap(served: dict[str, Serve]) -> None:
    paced_as(stream(served["recorded"], "fixed=20"), fixed(20))


def test_server_wide_speed(served: dict[str, Serve]) -> None:
    paced_as(stream(served["speed=4"]), scaled(4))
    # The header overrides the server's default, both ways.
    paced_as(stream(served["speed=4"], "recorded"), scaled(1))


def test_header_overrides_instant_server(served: dict[str, Serve]) -> None:
    paced_as(stream(served["instant"], "fixed=30"), fixed(30))


def test_instant_is_fast(served: dict[str, Serve]) -> None:
    paced_as(stream(served["recorded"], "instant"), [0.0] * (len(AT_MS) + 2))


def test_json_response_waits_time_to_headers(served: dict[str, Serve]) -> None:
    for spec, expected in (("recorded", 150.0), ("speed=3", 50.0)):

        def run(spec: str = spec) -> Exchange:
            got = exchange(
                served["recorded"].base_url, body=JSON_KWARGS, headers={"x-tapedeck-timing": spec}
            )
            assert got.status == 200, got.body
            assert json.loads(got.body)["content"] == [{"type": "text", "text": "late"}]
            return got

        paced_as(run, [expected, expected])  # the headers and the whole body


def test_end_at_ms_holds_the_body_open(served: dict[str, Serve]) -> None:
    def run() -> Exchange:
        got = exchange(served["recorded"].base_url, body={**END_KWARGS, "stream": True})
        assert got.names == ["message_start", "message_stop"]
        return got

    # The events at 0 and 20 ms; the body stays open until end_at_ms (200 ms).
    paced_as(run, [0.0, 0.0, 20.0, 200.0])


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


def test_paced_sends_one_chunk_per_event(served: dict[str, Serve]) -> None:
    """Paced, each event goes out in a send of its own when it falls due. Events that fell
    due together (the server woke late) go out together, so a chunk of several events must
    have come no earlier than the last of them was due, and the best of a few runs has one
    chunk per event."""
    whole = exchange(served["instant"].base_url, body=PACED_BODY).chunks
    assert len(whole) == 1
    events = event_blocks(whole[0][0])
    due_ms = fixed(30)[1:-1]
    for _ in range(RUNS):
        run = exchange(
            served["instant"].base_url, body=PACED_BODY, headers={"x-tapedeck-timing": "fixed=30"}
        )
        assert b"".join(chunk for chunk, _ in run.chunks) == whole[0][0]
        if run.clock_moved_ms > CLOCK_STEP_MS:  # the system time was set: measure again
            continue
        sent = 0
        for chunk, at in run.chunks:
            held = event_blocks(chunk)
            assert chunk == b"".join(held), chunk  # whole events only
            sent += len(held)
            assert run.ms(at) >= due_ms[sent - 1] - EARLY_MS, (sent, fmt(run.timeline()))
        if [chunk for chunk, _ in run.chunks] == events:
            break
    else:
        raise AssertionError(
            f"events joined in each of {RUNS} runs: {[len(event_blocks(c)) for c, _ in run.chunks]}"
        )
    for chunk, kind in zip(run.chunks, EVENT_TYPES, strict=True):
        assert chunk[0].startswith(f"event: {kind}\n".encode())
