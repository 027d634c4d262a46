"""Upstreams that fail the way networks do, over real sockets on 127.0.0.1.

:class:`BadUpstream` accepts connections and treats each as its ``behaviour`` says:

================== ===========================================================================
``silent``         reads the request and never answers (the headers never come)
``close``          reads the request and closes the connection before any headers
``reset``          reads the request and resets the connection (RST) before any headers
``reset_mid``      sends a stream's headers and two events, then resets the connection
``plain``          answers anything, a TLS handshake included, with a plain-text HTTP 400
``self_signed``    speaks TLS with a self-signed certificate (:data:`CERT`), then answers
                   as ``plain`` — a client that checks certificates never gets that far
``backlog``        never accepts, its queue of connections full: a new one never completes
================== ===========================================================================

``mixed`` picks one of the behaviours that follow a request (``silent``, ``close``,
``reset``, ``reset_mid``) per request: the first ``fail:NAME`` in the request's bytes.

The ways it cannot play — nothing listening, a name that does not resolve — are
:func:`closed_port` and :data:`NO_SUCH_HOST`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import struct
import threading
from pathlib import Path

#: A self-signed certificate for 127.0.0.1 and its key (valid until 2126).
CERT = Path(__file__).with_name("self_signed.pem")
#: A name that never resolves (RFC 6761 reserves ``.invalid``).
NO_SUCH_HOST = "tapedeck-no-such-host.invalid"
#: What may follow a request that was read, by itself or picked per request by ``mixed``.
AFTER_REQUEST = ("silent", "close", "reset", "reset_mid")
BEHAVIOURS = (*AFTER_REQUEST, "plain", "self_signed", "mixed", "backlog")
_PICK = re.compile(rb"fail:(\w+)")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"request-id: req_bad_0001\r\ntransfer-encoding: chunked\r\n\r\n"
)
_MESSAGE = {
    "id": "msg_bad_0001",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
_BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
_PLAIN_400 = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n"
    b"connection: close\r\n\r\nbad request"
)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _read_request(conn: socket.socket) -> bytes | None:
    """Read one request (headers and a ``content-length`` body); ``None`` if the peer
    left first."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(65536)
        if not got:
            return None
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        got = conn.recv(65536)
        if not got:
            return None
        body += got
    return head + b"\r\n\r\n" + body


def _reset(conn: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class BadUpstream:
    """A TCP server on 127.0.0.1 that fails each connection as ``behaviour`` says."""

    def __init__(self, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour: {behaviour!r} is not one of {BEHAVIOURS}")
        self.behaviour = behaviour
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0 if behaviour == "backlog" else 64)
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._open: list[socket.socket] = []
        if behaviour == "backlog":  # fill the queue; the kernel then drops new SYNs
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", self.port))
                self._open.append(filler)
            return
        #: How many connections it accepted.
        self.connections = 0
        self._tls: ssl.SSLContext | None = None
        if behaviour == "self_signed":
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(CERT)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def base_url(self) -> str:
        """The URL to give tapedeck: ``https`` for the behaviours that are about TLS."""
        scheme = "https" if self.behaviour in ("plain", "self_signed") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self._play(conn)

    def _play(self, conn: socket.socket) -> None:
        behaviour = self.behaviour
        if behaviour == "plain":
            conn.recv(65536)
            conn.sendall(_PLAIN_400)
            conn.close()
            return
        if behaviour == "self_signed":
            assert self._tls is not None
            try:
                wrapped = self._tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused the certificate, as it should
            if _read_request(wrapped) is not None:
                wrapped.sendall(_PLAIN_400)
            wrapped.close()
            return
        request = _read_request(conn)
        if request is None:
            return
        if behaviour == "mixed":
            found = _PICK.search(request)
            behaviour = found.group(1).decode() if found else "close"
        if behaviour == "silent":
            self._closed.wait()
        elif behaviour == "close":
            conn.close()
        elif behaviour == "reset":
            _reset(conn)
        elif behaviour == "reset_mid":
            conn.sendall(_STREAM_HEAD)
            conn.sendall(
                _chunk(_sse("message_start", {"type": "message_start", "message": _MESSAGE}))
            )
            conn.sendall(_chunk(_sse("content_block_start", _BLOCK)))
            self._closed.wait(0.05)
            _reset(conn)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> BadUpstream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
