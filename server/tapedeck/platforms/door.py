"""The shared mapping: a platform request entering as a first-party one, and its answer.

:func:`enter` takes the ASGI ``scope``, ``receive`` and ``send`` of a request a door
claimed and gives back the first-party ones: the path (and ``raw_path``) the route names,
the body :meth:`Route.body` made of the platform's, then the route's headers set (the
body may decide them), ``content-type`` kept as sent (the access checks, which run after,
still refuse anything but JSON). ``send`` passes the response through the
route's :class:`Reframe`, if it has one. The client's own request is kept in the scope
(:data:`PLATFORM_REQUEST`), for sending it upstream in the platform's form
(:mod:`tapedeck.platforms.forwarding`). Nothing else of tapedeck knows platforms exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import Message, Receive, Scope, Send

from ..errors import APIError

#: Where the platform and the path the client sent are kept in the (first-party) scope.
PLATFORM = "tapedeck.platform"
#: Where the client's own request (a :class:`PlatformRequest`) is kept in the scope.
PLATFORM_REQUEST = "tapedeck.platform_request"
#: The ``anthropic-version`` a request gets when its platform names none in a header.
FIRST_PARTY_VERSION = "2023-06-01"


class Reframe(Protocol):
    """Re-encodes one first-party response in a platform's framing (one per request)."""

    def head(
        self, status: int, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """The status and headers the client gets (``content-length`` is already dropped)."""
        ...

    def body(self, chunk: bytes, more: bool) -> bytes:
        """What the client gets for this piece of the first-party body (``more``: not the
        last piece); pieces split SSE events anywhere, so a reframer keeps the rest."""
        ...


@dataclass(slots=True)
class Route:
    """What a door makes of one request: the first-party request it becomes."""

    #: The door's name (``vertex``, ...), kept in the scope with the client's path.
    platform: str
    #: The first-party path: ``/v1/messages``, ``/v1/messages/count_tokens``, ...
    path: str
    #: The model the platform's path names (put in the body), if it names one.
    model: str | None = None
    #: Headers to set (lower-case names), replacing the client's.
    headers: dict[str, str] = field(default_factory=dict)
    #: Headers to set only where the client sent none.
    defaults: dict[str, str] = field(default_factory=dict)
    #: Top-level body fields the platform adds and the first party does not have.
    dropped: tuple[str, ...] = ()

    def body(self, body: bytes) -> bytes:
        """The first-party body for the platform's ``body``. A body that is not a JSON
        object is passed on as it is: the handler answers it as the API would."""
        if self.model is None and not self.dropped:
            return body
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            return body
        if not isinstance(parsed, dict):
            return body
        self.found(parsed)
        out = {"model": self.model} if self.model is not None else {}
        out.update((k, v) for k, v in parsed.items() if k not in self.dropped and k not in out)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()

    def found(self, body: dict[str, Any]) -> None:
        """A hook for doors that read more of the platform's body before it is mapped
        (e.g. ``anthropic_beta`` into :attr:`headers`)."""

    def reframe(self) -> Reframe | None:
        """The response's re-encoder, or ``None`` for the first-party framing."""
        return None


@dataclass(frozen=True, slots=True)
class PlatformRequest:
    """The request as the platform client sent it, before its door mapped it."""

    route: Route
    #: The path as sent, percent-encoding kept (SigV4 signs it; ARNs hold ``%2F``).
    raw_path: bytes
    query_string: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class Door:
    """One platform's front door (see the package's docs for adding one)."""

    #: The name the routes carry.
    name = ""
    #: Every path the door claims starts with one of these (checked first, cheaply).
    prefixes: tuple[str, ...] = ()

    def route(self, method: str, path: str) -> Route | None:
        """The route for a request to ``path`` (percent-decoded), or ``None`` if it is not
        this platform's."""
        raise NotImplementedError


async def enter(
    route: Route, scope: Scope, receive: Receive, send: Send, limit: int
) -> tuple[Scope, Receive, Send]:
    """The first-party ``scope``, ``receive`` and ``send`` for a request ``route`` maps.

    The body is read here, whole, as the handler would read it (a body over ``limit``,
    ``max_body_size``, is refused 413 when the handler asks for it), because the headers
    may depend on it (Vertex's ``anthropic_version``, Bedrock's ``anthropic_beta``)."""
    body, size, ended = await _read(receive, limit)
    original = body
    if size <= limit:
        body = route.body(body)
    drop = {k.encode() for k in route.headers}
    headers = [(k, v) for k, v in scope["headers"] if k not in drop]
    sent = {k for k, _ in headers}
    added = {k: v for k, v in route.defaults.items() if k.encode() not in sent}
    added.update(route.headers)
    headers += [(k.encode(), v.encode("latin-1")) for k, v in added.items()]
    inner = dict(scope)
    inner.update(path=route.path, raw_path=route.path.encode(), headers=headers)
    inner[PLATFORM] = (route.platform, scope["path"])
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    inner[PLATFORM_REQUEST] = PlatformRequest(
        route, raw_path, query, tuple(scope["headers"]), original
    )
    return inner, _replay(body, size, limit, ended, receive), _reframed(route.reframe(), send)


async def _read(receive: Receive, limit: int) -> tuple[bytes, int, Message | None]:
    """The request's body (empty past ``limit``), its size, and the message that ended it
    early (a client that left), if one did."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), size, message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return (b"".join(chunks) if size <= limit else b""), size, None


def _replay(body: bytes, size: int, limit: int, ended: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the mapped body once, then waits on the client's."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()  # http.disconnect, when the client goes
        given = True
        if ended is not None:
            return ended
        if size > limit:
            raise APIError(
                413,
                f"tapedeck: request body is {size} bytes; the limit is {limit} bytes "
                "(setting max_body_size)",
            )
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _reframed(reframe: Reframe | None, send: Send) -> Send:
    if reframe is None:
        return send

    async def reframed(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(k, v) for k, v in message.get("headers", ()) if k != b"content-length"]
            status, headers = reframe.head(message["status"], kept)
            message = {**message, "status": status, "headers": headers}
        elif message["type"] == "http.response.body":
            more = message.get("more_body", False)
            message = {**message, "body": reframe.body(message.get("body", b""), more)}
        await send(message)

    return reframed
