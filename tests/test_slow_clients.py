"""Clients that read slowly or not at all: at most ``max_client_buffer`` bytes wait for one,
a reader that takes nothing for ``write_timeout`` is cut and logged, and one that keeps
reading, however slowly, gets every byte. Over real sockets."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import LogLines, sdk
from tapedeck.config import Settings
from tapedeck.server.http_protocol import piece_size
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

DELTA = "y" * 2000
DELTAS = 400  # about 900 kB of events
ASK = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "big"}]}
BUFFER = 64 * 1024


def big_cassette(root: Path) -> Path:
    events: list[dict[str, Any]] = [
        {"event": "message_start", "at_ms": 0, "data": {"type": "message_start", "message": {
            "id": "msg_big", "type": "message", "role": "assistant", "content": [],
            "model": "m", "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}}},
        {"event": "content_block_start", "at_ms": 0, "data": {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}},
    ]  # fmt: skip
    events += [
        {"event": "content_block_delta", "at_ms": i / 10, "data": {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": DELTA}}}
        for i in range(DELTAS)
    ]  # fmt: skip
    events += [
        {"event": "content_block_stop", "at_ms": 40, "data": {
            "type": "content_block_stop", "index": 0}},
        {"event": "message_delta", "at_ms": 40, "data": {
            "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3}}},
        {"event": "message_stop", "at_ms": 40, "data": {"type": "message_stop"}},
    ]  # fmt: skip
    cassette = {
        "version": 1,
        "interactions": [
            {
                "request": {
                    "method": "POST",
                    "path": "/v1/messages",
                    "body": {**ASK, "stream": True},
                },
                "response": {"status": 200, "events": events},
            }
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "big.yaml").write_text(json.dumps(cassette))  # JSON is YAML
    return root


@contextmanager
def small_buffers(root: Path, **settings: Any) -> Iterator[ServerThread]:
    """A server whose sockets have a small kernel send buffer, so that what a client does
    not read stays in tapedeck's buffer (where the bound applies), not the kernel's."""
    server = ServerThread(
        Settings(cassettes=root, port=0, timing=Timing.parse("instant"), **settings)
    )
    server._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)  # inherited
    with server:
        yield server


def request_bytes(server: ServerThread) -> tuple[socket.socket, bytes]:
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.connect((url.hostname, url.port))
    body = json.dumps({**ASK, "stream": True}).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {url.hostname}:{url.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return sock, head.encode() + body


def read_all(sock: socket.socket, pause: float = 0.0, size: int = 65536) -> bytes:
    data = b""
    sock.settimeout(10)
    try:
        while part := sock.recv(size):
            data += part
            if data.endswith(b"\r\n0\r\n\r\n"):
                break
            if pause:
                time.sleep(pause)
    except ConnectionResetError:
        pass
    return data


def dechunked(data: bytes) -> bytes:
    """The body of a chunked HTTP/1.1 response."""
    rest = data.partition(b"\r\n\r\n")[2]
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return body


def test_pieces_fit_the_buffer() -> None:
    assert [piece_size(b) for b in (4096, 64 * 1024, 256 * 1024, 8 << 20)] == [
        1024,
        16 * 1024,
        64 * 1024,
        64 * 1024,
    ]


@pytest.mark.parametrize("timing", ["instant", "fixed=0.05"])
def test_a_client_that_reads_nothing_is_cut_after_write_timeout(
    tmp_path: Path, tapedeck_log: LogLines, timing: str
) -> None:
    with small_buffers(
        big_cassette(tmp_path), max_client_buffer=BUFFER, write_timeout=0.5
    ) as server:
        tapedeck_log.only(server)
        sock, request = request_bytes(server)
        with sock:
            sock.sendall(
                request.replace(b"\r\n\r\n", f"\r\nx-tapedeck-timing: {timing}\r\n\r\n".encode(), 1)
            )
            [line] = tapedeck_log.wait_for("client too slow", timeout=15)
            data = read_all(sock)
    found = re.search(r"read nothing for 0.5 s with (\d+) bytes unread", line)
    assert found, line
    assert 0 < int(found.group(1)) <= BUFFER
    assert "(settings write_timeout, max_client_buffer)" in line
    assert line.startswith("POST /v1/messages 200 big ")
    assert len(data) < DELTAS * len(DELTA)  # cut: most of the stream never went out
    assert not data.endswith(b"\r\n0\r\n\r\n")


def test_a_slow_reader_that_keeps_reading_gets_every_byte(
    tmp_path: Path, tapedeck_log: LogLines
) -> None:
    """Reading 16 kB every 10 ms is far slower than the server writes, and the buffer stays
    full, but every write_timeout window sees progress: nobody is cut."""
    with small_buffers(
        big_cassette(tmp_path), max_client_buffer=BUFFER, write_timeout=0.3
    ) as server:
        tapedeck_log.only(server)
        sock, request = request_bytes(server)
        with sock:
            sock.sendall(request)
            data = read_all(sock, pause=0.01, size=16 * 1024)
        assert tapedeck_log.wait_for("POST /v1/messages 200 big")
    assert data.endswith(b"\r\n0\r\n\r\n")
    assert dechunked(data).count(b"event: content_block_delta") == DELTAS
    assert not tapedeck_log.matching("too slow")


@pytest.mark.parametrize("stream", [True, False])
def test_a_large_response_in_pieces_is_whole_for_the_sdk(tmp_path: Path, stream: bool) -> None:
    with (
        small_buffers(big_cassette(tmp_path), max_client_buffer=BUFFER) as server,
        sdk(server) as client,
    ):
        if stream:
            with client.messages.stream(**ASK) as reply:
                text = reply.get_final_text()
        else:
            block = client.messages.create(**ASK).content[0]
            assert block.type == "text"
            text = block.text
    assert text == DELTA * DELTAS
