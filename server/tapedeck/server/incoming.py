"""An incoming API request, read straight from ASGI with as little work as possible.

The ``/v1/`` hot path does not go through Starlette's router and ``Request``: it needs the
method, path, a few headers and the body, and every microsecond there is a microsecond
on every replayed response.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from ..errors import APIError


@dataclass(slots=True)
class Incoming:
    """The parts of an ASGI HTTP request that tapedeck uses."""

    scope: Scope
    method: str
    path: str
    query_string: bytes
    #: Lower-case name -> value (for a repeated header, the last one).
    headers: dict[str, str]
    header_items: list[tuple[str, str]]
    body: bytes

    @classmethod
    async def read(cls, scope: Scope, receive: Receive, limit: int) -> Incoming:
        """Read the request and its whole body; 413 ``request_too_large`` over ``limit``."""
        items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            more = message.get("more_body", False)
        # The whole body is read even when too large: answering before the client has
        # finished sending makes it see a broken connection (and retry) instead of the 413.
        if size > limit:
            raise APIError(
                413,
                f"tapedeck: request body is {size} bytes; the limit is {limit} bytes "
                "(setting max_body_size)",
            )
        return cls(
            scope,
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            dict(items),
            items,
            b"".join(chunks) if len(chunks) != 1 else chunks[0],
        )

    def query_items(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)

    @property
    def base_url(self) -> str:
        """The URL the client used to reach this server, without a trailing slash."""
        host = self.headers.get("host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{self.scope.get('scheme', 'http')}://{host}"
