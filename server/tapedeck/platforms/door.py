"""The shared mapping: a platform request entering as a first-party one, and its answer.

:func:`enter` takes the ASGI ``scope``, ``receive`` and ``send`` of a request a door
claimed and gives back the first-party ones: the path (and ``raw_path``) the route names,
the route's headers set, ``content-type: application/json`` kept as sent (the access
checks still refuse anything else), and a ``receive`` that hands the handler the body
:meth:`Route.body` made of the platform's. ``send`` passes the response through the
route's :class:`Reframe`, if it has one. Nothing else of tapedeck knows platforms exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import Message, Receive, Scope, Send

from ..errors import APIError

#: Where the platform and the path the client sent are kept in the scope, for the log.
PLATFORM = "tapedeck.platform"
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

    #: The door's name (``vertex``, ...), for the log and the journal.
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


def enter(
    route: Route, scope: Scope, receive: Receive, send: Send, limit: int
) -> tuple[Scope, Receive, Send]:
    """The first-party ``scope``, ``receive`` and ``send`` for a request ``route`` maps;
    ``limit`` is ``max_body_size`` (a larger body is refused 413 the handler's way)."""
    drop = {k.encode() for k in route.headers}
    headers = [(k, v) for k, v in scope["headers"] if k not in drop]
    sent = {k for k, _ in headers}
    added = {**{k: v for k, v in route.defaults.items() if k.encode() not in sent}, **route.headers}
    headers += [(k.encode(), v.encode("latin-1")) for k, v in added.items()]
    inner = dict(scope)
    inner.update(
        path=route.path,
        raw_path=route.path.encode(),
        headers=headers,
    )
    inner[PLATFORM] = (route.platform, scope["path"])
    return inner, _mapped_body(route, receive, limit, inner), _reframed(route.reframe(), send)


#: The app's dict of the request's headers in the scope (``server/incoming.py``'s ``HEADERS``).
_HEADERS_DICT = "tapedeck.headers"


def _late_headers(route: Route, scope: Scope, before: dict[str, str]) -> None:
    """Put in ``scope`` the headers :meth:`Route.found` set from the body (Bedrock's
    ``anthropic_beta``): the handler reads them only after the body."""
    late = {k: v for k, v in route.headers.items() if before.get(k) != v}
    if not late:
        return
    names = {k.encode() for k in late}
    items = [(k.encode(), v.encode("latin-1")) for k, v in late.items()]
    scope["headers"][:] = [(k, v) for k, v in scope["headers"] if k not in names] + items
    made = scope.get(_HEADERS_DICT)
    if isinstance(made, dict):
        made.update(items)


def _mapped_body(route: Route, receive: Receive, limit: int, scope: Scope) -> Receive:
    done = False
    before = dict(route.headers)

    async def mapped() -> Message:
        nonlocal done
        if done:
            return await receive()  # http.disconnect, once the body is read
        done = True
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size > limit:
            raise APIError(
                413,
                f"tapedeck: request body is {size} bytes; the limit is {limit} bytes "
                "(setting max_body_size)",
            )
        body = route.body(b"".join(chunks))
        _late_headers(route, scope, before)
        return {"type": "http.request", "body": body, "more_body": False}

    return mapped


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
