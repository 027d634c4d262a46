"""Requests that are not valid HTTP/1.1 get the API's error shape, as JSON, under both of
uvicorn's HTTP implementations (httptools, the default, and h11)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import CASSETTES, LogLines
from tapedeck.config import Settings
from tapedeck.server import http_protocol, runner
from tapedeck.server.runner import ServerThread


@pytest.fixture(params=["httptools", "h11"], scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    settings = Settings(cassettes=CASSETTES, port=0, max_header_size=4096)
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "h11":
            patch.setattr(runner, "protocol_class", http_protocol._h11_class)
        server = ServerThread(settings)
    with server:
        yield server


def exchange(server: ServerThread, raw: bytes) -> tuple[bytes, dict[str, str], Any]:
    """Send ``raw``, read until the server closes; return the status line, headers, JSON."""
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    data = b""
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(raw)
        while part := sock.recv(65536):
            data += part
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status.encode(), {k.lower(): v for k, v in headers.items()}, json.loads(body)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nx-a: a\x00b\r\n\r\n",
            id="nul-in-a-header",
        ),
        pytest.param(
            b"GET /v1/mod\xc3\xa9ls HTTP/1.1\r\nhost: localhost\r\n\r\n", id="raw-non-ascii"
        ),
        pytest.param(b"GARBAGE\r\n\r\n", id="no-request-line"),
        pytest.param(
            b"POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-length: abc\r\n\r\n",
            id="bad-content-length",
        ),
        pytest.param(
            b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nbad header: 1\r\n\r\n",
            id="space-in-a-header-name",
        ),
    ],
)
def test_malformed_requests_get_400_in_the_api_shape(
    server: ServerThread, tapedeck_log: LogLines, raw: bytes
) -> None:
    status, headers, body = exchange(server, raw)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert set(body) == {"type", "error", "request_id"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("tapedeck: the request is not valid HTTP/1.1: ")
    assert headers["request-id"] == body["request_id"]
    assert tapedeck_log.wait_for("malformed HTTP request answered 400")


def test_headers_over_the_limit_are_refused(server: ServerThread) -> None:
    raw = b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\n" + b"x-pad: " + b"p" * 8000
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    data = b""
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(raw[:100])  # headers that never end, in several reads
        sock.sendall(raw[100:])
        sock.sendall(b"p" * 8000)
        while part := sock.recv(65536):
            data += part
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] in (
        b"HTTP/1.1 431 Request Header Fields Too Large",  # httptools: tapedeck's own count
        b"HTTP/1.1 400 Bad Request",  # h11 refuses them itself
    )
    assert json.loads(payload)["type"] == "error"


def test_the_refusal_survives_a_client_that_keeps_sending(server: ServerThread) -> None:
    """Bytes the client sends after its request was refused are read and dropped, so the
    connection ends with the answer, not with a reset that would destroy it."""
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    data = b""
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        bad = b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nx-bad\x00: 1\r\n\r\n"
        more = b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\n\r\n" * 20_000  # ~1 MB
        sock.sendall(bad + more)  # refused while most of it is still unread
        time.sleep(0.3)  # a reset, if the server had closed, is back by now
        while part := sock.recv(65536):
            data += part
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert json.loads(data.partition(b"\r\n\r\n")[2])["type"] == "error"
    assert b"HTTP/1.1 200" not in data  # nothing after the refusal was served
