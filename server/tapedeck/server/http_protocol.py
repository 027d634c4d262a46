"""uvicorn's HTTP/1.1 protocol with what tapedeck needs of the connection underneath.

- **Bounded per client.** The transport's write buffer is capped at ``max_client_buffer``:
  past it uvicorn's ``send`` waits for the client to read (the writer sends large bodies
  in pieces, so the wait comes before the bytes pile up), and the writer is given a
  :class:`ClientConnection` to see that wait, tell a slow reader from a stuck one
  (``write_timeout``) and drop a stuck one with the bytes it never read.
- **Malformed HTTP in the API's shape.** A request uvicorn cannot parse (a NUL in a
  header, raw non-ASCII in the path, a broken request line) gets 400
  ``invalid_request_error`` as JSON, like every other error, instead of uvicorn's plain
  text; headers larger than ``max_header_size`` get 431 the same way.

The connection reaches the application in ``scope["state"]`` under :data:`CONNECTION`:
uvicorn copies its state into every request's scope, and it is the one per-connection
value both of its protocol implementations (httptools, h11) hand on unchanged.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, cast

from ..wire.errors import error_json
from ..wire.flow import CONNECTION
from .logs import info

#: The largest piece of a body handed to the transport at once.
MAX_PIECE = 64 * 1024
#: After refusing a malformed request, how long what the client still sends is read and
#: dropped before the connection closes: closing with unread bytes makes the kernel reset
#: the connection, and a reset can destroy the answer before the client has read it.
LINGER_S = 2.0


def piece_size(buffer: int) -> int:
    """How much of a body goes out per ``send`` for a client buffer of ``buffer`` bytes:
    small enough that the buffer plus one piece stays within ``buffer``."""
    return max(1024, min(MAX_PIECE, buffer // 4))


class _HeadHolder:
    """The transport as uvicorn's request cycles see it. ``write`` can hold a response's
    head until the body's first bytes, so that both leave in one system call and one
    packet: a replayed response otherwise pays a second send (and the client a second
    read) for its 200-odd bytes of headers."""

    __slots__ = ("_head", "_transport", "hold")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        #: Hold the next write (a response's head) until the one after it.
        self.hold = False

    def write(self, data: bytes) -> None:
        """Write ``data``, after a held head; or hold it, if asked to."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif self.hold:
            self.hold = False
            self._head = data
        else:
            self._transport.write(data)

    def close(self) -> None:
        """Write a held head (no body is coming after all), then close."""
        self.hold = False
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)
        self._transport.close()

    def is_closing(self) -> bool:
        """As the transport's."""
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport, as it is
        return getattr(self._transport, name)


class ClientConnection:
    """One client's connection, as the writer sees it (see ``wire.writer.Connection``)."""

    __slots__ = (
        "_flow",
        "_lost",
        "_transport",
        "buffer",
        "gone",
        "holder",
        "piece",
        "write_timeout",
    )

    def __init__(
        self, transport: asyncio.Transport, flow: Any, buffer: int, write_timeout: float
    ) -> None:
        self._transport = transport
        self._flow = flow
        #: At most this many bytes wait for the client (``max_client_buffer``).
        self.buffer = buffer
        #: Bodies go out in pieces of at most this size.
        self.piece = piece_size(buffer)
        #: Seconds a client may read nothing while the buffer is full (``write_timeout``).
        self.write_timeout = write_timeout
        transport.set_write_buffer_limits(high=max(buffer - self.piece, 1))
        #: The connection is lost (the client went away, or it was closed).
        self.gone = False
        self._lost: Callable[[], None] | None = None
        #: What uvicorn's request cycles write to, when the protocol can hold a head.
        self.holder: _HeadHolder | None = None

    def hold_head(self) -> None:
        """Send the head about to be sent with the body's first bytes: they are due now."""
        if self.holder is not None:
            self.holder.hold = True

    @property
    def full(self) -> bool:
        """True while the buffer is full: a ``send`` now would wait for the client."""
        full: bool = self._flow.write_paused
        return full

    def unread(self) -> int:
        """Bytes written for the client that it has not taken yet."""
        return self._transport.get_write_buffer_size()

    async def drained(self) -> None:
        """Wait until the buffer is no longer full, or the client has left."""
        await self._flow.drain()

    def abort(self) -> None:
        """Close the connection now, dropping what the client never read."""
        self._transport.abort()

    def when_lost(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` when the connection is lost (soon, if it already is);
        ``None``: no longer. One at a time: the response being sent is the one to stop."""
        self._lost = callback
        if callback is None:
            return
        if self.gone:
            asyncio.get_running_loop().call_soon(callback)
        else:  # as uvicorn's receive() does: a client's end is seen only while reading
            self._flow.resume_reading()

    def lost(self) -> None:
        """The protocol saw the connection go: tell the response being sent."""
        self.gone = True
        callback, self._lost = self._lost, None
        if callback is not None:
            callback()


def _bad_request_detail(exc: BaseException | None) -> str:
    cause = exc.__context__ if exc is not None and exc.__context__ is not None else exc
    if isinstance(cause, UnicodeDecodeError):
        return "the request target holds bytes that are not ASCII; percent-encode them"
    text = str(exc or "").strip().rstrip(".")
    if not text or text.startswith("`on_"):
        return "the request line or a header cannot be parsed"
    return text[:1].lower() + text[1:]


def _error_response(status: int, reason: str, message: str) -> bytes:
    payload, request_id = error_json(status, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nrequest-id: {request_id}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + payload


class _Tapedeck:
    """What tapedeck adds to either of uvicorn's protocol classes (a mixin)."""

    buffer: int
    write_timeout: float
    max_header_size: int
    transport: asyncio.Transport
    flow: Any
    app_state: dict[str, Any]
    _refused = False
    _client: ClientConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        connection = ClientConnection(
            cast(asyncio.Transport, transport), self.flow, self.buffer, self.write_timeout
        )
        self._client = connection
        self.app_state = {**self.app_state, CONNECTION: connection}

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        if self._client is not None:
            self._client.lost()

    def send_400_response(self, msg: str) -> None:
        # Called from uvicorn's ``except`` around the parser: the error is the one handled.
        detail = _bad_request_detail(sys.exc_info()[1])
        self._refuse(400, "Bad Request", f"tapedeck: the request is not valid HTTP/1.1: {detail}")

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the rest of a refused request: dropped while lingering
            return
        super().data_received(data)  # type: ignore[misc]

    def _refuse(self, status: int, reason: str, message: str) -> None:
        transport = self.transport
        if transport.is_closing() or self._refused:
            return
        info("malformed HTTP request answered %d: %s", status, message.removeprefix("tapedeck: "))
        self._refused = True
        transport.write(_error_response(status, reason, message))
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()  # the answer, then the end: the client sees both
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)


def protocol_class(buffer: int, write_timeout: float, max_header_size: int) -> type[Any]:
    """uvicorn's HTTP protocol class (httptools when installed, else h11) with tapedeck's
    connection bounds and API-shaped answers to malformed requests; pass it as
    ``uvicorn.Config(http=...)``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is installed on CPython
        return _h11_class(buffer, write_timeout, max_header_size)

    class Protocol(_Tapedeck, HttpToolsProtocol):
        # llhttp has no limit of its own on the size of the headers. Bytes that arrive once
        # the previous request's body is complete belong to the next request's headers,
        # until that request starts (uvicorn makes a new cycle for it).
        _header_bytes = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if self._client is not None:  # what each request's cycle will write to
                holder = self._client.holder = _HeadHolder(self.transport)
                self.transport = cast(asyncio.Transport, holder)

        def data_received(self, data: bytes) -> None:
            if self._refused:  # as _Tapedeck's, which this replaces: one call per request less
                return
            cycle = self.cycle
            waiting = cycle is None or not cycle.more_body
            HttpToolsProtocol.data_received(self, data)
            if self.cycle is not cycle:
                self._header_bytes = 0
            elif waiting:
                self._header_bytes += len(data)
                if self._header_bytes > self.max_header_size:
                    self._refuse(
                        431,
                        "Request Header Fields Too Large",
                        f"tapedeck: the request line and headers exceed {self.max_header_size} "
                        "bytes (setting max_header_size)",
                    )

    return _configured(Protocol, buffer, write_timeout, max_header_size)


def _h11_class(buffer: int, write_timeout: float, max_header_size: int) -> type[Any]:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(_Tapedeck, H11Protocol):
        def handle_events(self) -> None:
            try:
                super().handle_events()
            except UnicodeDecodeError:  # a raw non-ASCII request target
                self.send_400_response("")

    return _configured(Protocol, buffer, write_timeout, max_header_size)


def _configured(
    protocol: type[_Tapedeck], buffer: int, write_timeout: float, max_header_size: int
) -> type[Any]:
    protocol.buffer, protocol.write_timeout = buffer, write_timeout
    protocol.max_header_size = max_header_size
    return protocol
