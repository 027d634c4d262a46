"""A small HTTP/1.1 client over raw asyncio sockets: exact bytes in, exact bytes out, each
read timestamped, and ways to misbehave (leave early, never read)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The bytes of one request (a JSON body when ``body`` is not bytes)."""
    payload = (
        b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    )
    given = {k.lower() for k in headers or {}}
    lines = [f"{method} {path} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"host: {host}:{port}")
    if payload or method in ("POST", "PUT"):
        if "content-type" not in given:
            lines.append("content-type: application/json")
        lines.append(f"content-length: {len(payload)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def run(coroutine: Any) -> Any:
    """Run ``coroutine`` on uvloop when it is installed (a cheaper client), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with tapedeck on CPython
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: The body ended as HTTP says (the last chunk, or the whole content-length).
    complete: bool = False
    #: ``(perf_counter, body bytes so far)`` after each read that brought body bytes.
    reads: list[tuple[float, int]] = field(default_factory=list)
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


class _Body:
    """Incremental decoding of a chunked or content-length body."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.chunked = "chunked" in headers.get("transfer-encoding", "")
        self.length = int(headers.get("content-length", "0")) if not self.chunked else -1
        self.buffer = b""
        self.body = bytearray()
        self.done = not self.chunked and self.length == 0

    def feed(self, data: bytes) -> None:
        if not self.chunked:
            self.body += data
            self.done = len(self.body) >= self.length
            return
        self.buffer += data
        while not self.done:
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            if size == 0:
                self.done = True
                return
            self.body += rest[:size]
            self.buffer = rest[size + 2 :]


async def exchange(
    host: str,
    port: int,
    raw: bytes,
    *,
    wait_s: float = 30.0,
    leave_after: int | None = None,
    rcvbuf: int | None = None,
) -> Response:
    """Send ``raw`` on a new connection and read the response (``leave_after``: close once
    that many body bytes have arrived, as a client that leaves early)."""
    response = Response()
    writer = None
    try:
        sock = None
        if rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(raw)
        async with asyncio.timeout(wait_s):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            response.status = int(status_line.split(" ")[1])
            response.headers = {
                k.lower(): v for k, _, v in (line.partition(": ") for line in lines if line)
            }
            body = _Body(response.headers)
            while not body.done:
                data = await reader.read(65536)
                if not data:
                    break
                body.feed(data)
                response.reads.append((time.perf_counter(), len(body.body)))
                if leave_after is not None and len(body.body) >= leave_after:
                    break
            response.body = bytes(body.body)
            response.complete = body.done
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        response.error = type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
    return response
