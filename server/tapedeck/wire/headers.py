"""Response headers as they go on the wire: which recorded ones are kept, which are added.

Recorded headers are replayed except hop-by-hop ones and those describing a body encoding
that replay does not reproduce; ``date`` is the server's own, fresh.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..pipeline import WireHeaders

#: Headers that describe one connection, not the message (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
#: Response headers never passed on: hop-by-hop headers, those describing a body encoding
#: tapedeck does not reproduce, and ``date`` (the server sends its own).
DROPPED_HEADERS = HOP_BY_HOP | {"proxy-authenticate", "content-length", "content-encoding", "date"}

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


def header_value(text: str) -> bytes:
    """A header value as bytes; characters HTTP headers cannot carry become ``\\uXXXX``."""
    return text.encode("latin-1", "backslashreplace")


def encode_headers(pairs: Iterable[tuple[str, str]]) -> WireHeaders:
    """``(name, value)`` text pairs as the ASGI header list."""
    return [(k.encode("latin-1"), header_value(v)) for k, v in pairs]


def response_headers(
    recorded: Iterable[tuple[str, str]],
    *,
    stream: bool,
    length: int | None = None,
    json_body: bool = False,
    extra: Iterable[tuple[str, str]] = (),
) -> WireHeaders:
    """The header list for a response: ``recorded`` headers (minus dropped ones), the
    content type and cache control it implies when they are missing, ``content-length``
    for a whole body of ``length`` bytes, then ``extra``."""
    headers = [(k, v) for k, v in recorded if k not in DROPPED_HEADERS]
    names = {k for k, _ in headers}
    if "content-type" not in names:
        if stream:
            headers.append(("content-type", SSE_CONTENT_TYPE))
        elif json_body:
            headers.append(("content-type", JSON_CONTENT_TYPE))
    if stream and "cache-control" not in names:
        headers.append(("cache-control", "no-cache"))
    if not stream and length is not None:
        headers.append(("content-length", str(length)))
    headers.extend(extra)
    return encode_headers(headers)
