"""How fast bytes may leave for one client: its connection's buffer and the byte limit.

Under tapedeck's own HTTP protocol (:mod:`tapedeck.server.http_protocol`) a response sees
the client's :class:`Connection`: at most ``max_client_buffer`` bytes wait for a client at
a time, so a large body goes out in pieces, each once the client has read enough, and a
client that reads nothing for ``write_timeout`` while the buffer is full is cut, the bytes
it never read dropped with it. :class:`Outlet` applies that to every send;
:class:`ByteMeter` counts body bytes against a fault's byte limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from starlette.types import Message, Send

from ..errors import StreamCut

#: Where tapedeck's HTTP protocol puts the :class:`Connection` (in ``scope["state"]``).
CONNECTION = "tapedeck.connection"


class Connection(Protocol):
    """The client's connection: how much it has not read yet, and how to drop it."""

    #: Bodies go out in pieces of at most this many bytes.
    piece: int
    #: Seconds a client may read nothing while its buffer is full.
    write_timeout: float

    @property
    def full(self) -> bool:
        """True while the client's buffer is full: a send now would wait for it."""
        ...

    def unread(self) -> int:
        """Bytes written for the client that it has not read yet."""
        ...

    async def drained(self) -> None:
        """Return once the buffer is no longer full (or the client has left)."""
        ...

    def abort(self) -> None:
        """Close the connection at once, dropping what the client has not read."""
        ...

    def hold_head(self) -> None:
        """Send the response head about to be sent together with the body's first bytes
        (they are due at once): one write instead of two."""
        ...

    def when_lost(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` when the connection is lost (soon, if it already is);
        ``None``: no longer."""
        ...


class Outlet:
    """Sends one response's ASGI messages no faster than the client reads them.

    ``conn`` is ``None`` outside tapedeck's HTTP protocol: then every send goes straight out.
    """

    __slots__ = ("conn", "send", "too_slow")

    def __init__(self, send: Send, conn: Connection | None) -> None:
        self.send = send
        self.conn = conn
        #: Why the client was cut for reading too slowly ("" if it was not).
        self.too_slow = ""

    async def out(self, message: Message) -> None:
        """Send one ASGI message, once the client has room for it."""
        conn = self.conn
        if conn is not None and conn.full:
            await self.wait_for_client(conn)
        await self.send(message)

    async def wait_for_client(self, conn: Connection) -> None:
        """Wait while the client's buffer is full; cut a client that reads nothing for
        ``write_timeout`` (raise :class:`StreamCut`)."""
        unread = conn.unread()
        while conn.full:
            try:
                async with asyncio.timeout(conn.write_timeout):
                    await conn.drained()
            except TimeoutError:
                now = conn.unread()
                if now < unread:  # slow, but reading: wait on
                    unread = now
                    continue
                self.too_slow = (
                    f"client too slow: read nothing for {conn.write_timeout:g} s with "
                    f"{unread} bytes unread (settings write_timeout, max_client_buffer)"
                )
                conn.abort()
                raise StreamCut(self.too_slow) from None

    async def write(self, data: bytes, more: bool) -> None:
        """Send body bytes, in pieces the client's buffer has room for."""
        conn = self.conn
        if conn is None or len(data) <= conn.piece:
            message = {"type": "http.response.body", "body": data, "more_body": more}
            if conn is None or not conn.full:  # room for it now
                await self.send(message)
            else:
                await self.out(message)
            return
        piece, size = conn.piece, len(data)
        for i in range(0, size, piece):
            end = i + piece
            chunk = data[i:end]
            await self.out(
                {"type": "http.response.body", "body": chunk, "more_body": more or end < size}
            )


class ByteMeter:
    """Counts body bytes against a limit; the chunk that reaches it is cut at the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0
        self.reached = False

    def take(self, data: bytes) -> bytes:
        """The part of ``data`` that may still go out; sets :attr:`reached` at the limit."""
        room = self.limit - self.sent
        if len(data) >= room:
            self.reached = True
            self.sent = self.limit
            return data[: max(room, 0)]
        self.sent += len(data)
        return data
