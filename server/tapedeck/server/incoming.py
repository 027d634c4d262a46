"""An incoming API request, read straight from ASGI with as little work as possible.

The ``/v1/`` hot path does not go through Starlette's router and ``Request``: it needs the
method, path, a few headers and the body, and every microsecond there is a microsecond
on every replayed response. Headers are decoded only when asked for.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from ..errors import APIError

#: Where the app keeps the request's headers as a dict, in the ASGI scope.
HEADERS = "tapedeck.headers"


class Incoming:
    """The parts of an ASGI HTTP request that tapedeck uses."""

    __slots__ = ("_items", "body", "method", "path", "query_string", "raw", "scope")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.body = body
        #: Lower-case name -> value, as bytes (for a repeated header, the last one); made
        #: once per request, by the app's access checks (:data:`HEADERS`) when they ran.
        self.raw: dict[bytes, bytes] = scope.get(HEADERS) or dict(scope["headers"])
        self._items: list[tuple[str, str]] | None = None

    @classmethod
    async def read(cls, scope: Scope, receive: Receive, limit: int) -> Incoming:
        """Read the request and its whole body; 413 ``request_too_large`` over ``limit``."""
        message = await receive()
        body: bytes = message.get("body", b"") if message["type"] == "http.request" else b""
        if message.get("more_body", False) and message["type"] == "http.request":
            chunks = [body]
            size = len(body)
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= limit:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks) if size <= limit else b""
        else:
            size = len(body)
        # The whole body is read even when too large: answering before the client has
        # finished sending makes it see a broken connection (and retry) instead of the 413.
        if size > limit:
            raise APIError(
                413,
                f"tapedeck: request body is {size} bytes; the limit is {limit} bytes "
                "(setting max_body_size)",
            )
        return cls(scope, body)

    def header(self, name: bytes) -> str | None:
        """The value of header ``name`` (lower case, as bytes), or ``None``."""
        value = self.raw.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def header_items(self) -> list[tuple[str, str]]:
        """Every header as ``(name, value)`` text, in order."""
        if self._items is None:
            self._items = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in self.scope["headers"]
            ]
        return self._items

    def query_items(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)

    @property
    def base_url(self) -> str:
        """The URL the client used to reach this server, without a trailing slash."""
        host = self.header(b"host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{self.scope.get('scheme', 'http')}://{host}"
