"""The field checks of one interaction read from cassette YAML: its request, its response
(headers, body, binary, end) and its events, each problem a :class:`CassetteError` naming
the file, the line and the field (:mod:`.load` reads the whole cassette with them)."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .blobs import is_sha256, uploads_in
from .event_order import refusal
from .fields import CLIENT_KEYS
from .fields import Fields as _Fields
from .fields import as_json as _json
from .fields import client as _client
from .fields import describe as _describe
from .model import (
    Blob,
    RecordedEvent,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
)
from .yaml_source import BadValue, LineDict

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
REQUEST_KEYS = frozenset({"method", "path", "query", "headers", "body", "match", "client"})
RESPONSE_KEYS = frozenset(
    {
        "status",
        "headers",
        "time_to_headers_ms",
        "body",
        "text",
        "binary",
        "events",
        "end",
        "end_at_ms",
    }
)
_BINARY_KEYS = frozenset({"sha256", "size"})
_EVENT_KEYS = frozenset({"event", "data", "at_ms"})
INTERACTION_KEYS = frozenset({"request", "response", "recorded_at"})


#: What HTTP allows in a header name (a token), and what it does not allow in a value.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_NOT_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _headers(f: _Fields, key: str, sent: bool = False) -> tuple[tuple[str, str], ...]:
    """The headers under ``key``; ``sent``: they go on the wire (a response's), so their
    values must be ones HTTP can carry."""
    raw = f.get(key, "a mapping of header name to value", (dict,), {})
    pairs: list[tuple[str, str]] = []
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(name, str) or not isinstance(item, (str, int, float)):
                line = item.line if isinstance(item, BadValue) else f.line_of(key)
                problem = f"header {name!r}: expected a string value, got {_describe(item)}"
                raise f.error(line, problem, key)
            line = raw.line_of(name) if isinstance(raw, LineDict) else f.line_of(key)
            if not _HEADER_NAME.match(name):
                problem = (
                    f"header {name!r}: a header name is ASCII letters, digits and "
                    "!#$%&'*+-.^_`|~ only"
                )
                raise f.error(line, problem, key)
            text = str(item)
            if sent and _NOT_IN_VALUE.search(text):
                problem = f"header {name!r}: a value cannot hold line breaks or control characters"
                raise f.error(line, problem, key)
            pairs.append((name.lower(), text))
    return tuple(pairs)


def _query(f: _Fields) -> tuple[tuple[str, str], ...]:
    raw = f.get("query", "a mapping of parameter name to value", (dict,), {})
    pairs: list[tuple[str, str]] = []
    for name, value in raw.items():
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(name, str) or not isinstance(item, str | int | float):
                line = item.line if isinstance(item, BadValue) else f.line_of("query")
                problem = f"parameter {name!r}: expected text or a number, got {_describe(item)}"
                raise f.error(line, problem, "query")
            text = json.dumps(item) if isinstance(item, bool) else str(item)
            pairs.append((name, text))
    return tuple(pairs)


def request_of(f: _Fields, plain: bool) -> RecordedRequest:
    """The request in ``f``; ``plain``: the fast loader read it, and so made sure its
    values are JSON data."""
    method = f.require("method", "an HTTP method such as POST", (str,)).upper()
    if method not in _METHODS:
        raise f.error(f.line_of("method"), f"unknown HTTP method {method!r}", "method")
    path = f.require("path", "a path such as /v1/messages", (str,))
    if not path.startswith("/"):
        raise f.error(f.line_of("path"), f"expected a path starting with '/', got {path!r}", "path")
    if f.has("body") and not plain:
        _json(f, "body", f.mapping["body"])
    match = f.get("match", "a list of body field names, e.g. [messages, system]", (list,))
    if match is not None and (not match or not all(isinstance(m, str) and m for m in match)):
        raise f.error(
            f.line_of("match"),
            f"expected a non-empty list of body field names, got {match!r}",
            "match",
        )
    return RecordedRequest(
        method=method,
        path=path,
        query=_query(f),
        headers=_headers(f, "headers"),
        body=f.mapping.get("body"),
        match=tuple(match) if match is not None else None,
        client=_client(f.child("client", CLIENT_KEYS)) if f.has("client") else None,
        uploads=uploads_in(f.mapping.get("body")),
    )


def _plain_events(items: list[Any]) -> tuple[RecordedEvent, ...] | None:
    """Events checked in one quick pass, for a document the fast loader read (its data
    already known to be JSON); ``None`` at anything unusual, for :func:`_events` to say."""
    events = []
    previous = 0.0
    for item in items:
        if type(item) is not dict or len(item) != 3:
            return None
        name, data, at = item.get("event"), item.get("data", _MISSING), item.get("at_ms")
        if type(name) is not str or not name or "\n" in name or "\r" in name:
            return None
        if data is _MISSING or not isinstance(at, int | float) or isinstance(at, bool):
            return None
        if type(at) is int and not -(2**53) <= at <= 2**53:
            return None  # the field checks say what is wrong with it
        at_ms = float(at)
        if not at_ms >= previous or at_ms == float("inf"):
            return None
        previous = at_ms
        events.append(RecordedEvent(name, data, at_ms))
    return tuple(events)


_MISSING = object()


def _events(f: _Fields, plain: bool, order: bool) -> tuple[RecordedEvent, ...]:
    items = f.get("events", "a list of events", (list,))
    if plain:
        quick = _plain_events(items)
        if quick is not None and (not order or refusal(_named(quick)) is None):
            return quick
    events: list[RecordedEvent] = []
    previous = 0.0
    for i, item in enumerate(items):
        e = _Fields(f.file, f"{f.where}.events[{i}]", item, f.line_of("events"), _EVENT_KEYS)
        name = e.require("event", "the SSE event name, e.g. content_block_delta", (str,))
        if not name or "\n" in name or "\r" in name:
            raise e.error(e.line_of("event"), "expected a one-line, non-empty event name", "event")
        if not e.has("data"):
            raise e.error(e.line, "missing field 'data' (the event's JSON data, or raw text)")
        at_ms = e.number("at_ms", None)
        if at_ms is None:
            raise e.error(e.line, "missing field 'at_ms' (milliseconds after the headers)")
        if at_ms < previous:
            raise e.error(
                e.line_of("at_ms"),
                f"events must be in time order: {at_ms:g} ms is before the previous "
                f"event's {previous:g} ms",
                "at_ms",
            )
        previous = at_ms
        data = e.mapping["data"]
        if not isinstance(data, str):
            _json(e, "data", data)
        events.append(RecordedEvent(name, data, at_ms))
    found = refusal(_named(events)) if order else None
    if found is not None:
        item = items[found.index or 0]
        line = item.line_of(found.line_of) if isinstance(item, LineDict) else f.line_of("events")
        raise f.error(line, found.message, found.where("events"))
    return tuple(events)


def _named(events: Iterable[RecordedEvent]) -> Iterator[tuple[str, Any]]:
    return ((e.event, e.data) for e in events)


def response_of(f: _Fields, plain: bool, order: bool) -> RecordedResponse:
    status = f.require("status", "an HTTP status code", (int,))
    if not 100 <= status <= 599:
        raise f.error(
            f.line_of("status"),
            f"expected an HTTP status code from 100 to 599, got {status}",
            "status",
        )
    bodies = [k for k in ("body", "text", "binary", "events") if f.has(k)]
    if len(bodies) > 1:
        raise f.error(
            f.line_of(bodies[1]),
            f"a response has one of 'body', 'text', 'binary' or 'events', not both "
            f"{bodies[0]!r} and {bodies[1]!r}",
        )
    headers = _headers(f, "headers", sent=True)
    time_to_headers = f.number("time_to_headers_ms", 0.0) or 0.0
    end_text = f.get("end", "'complete' or 'disconnect'", (str,), "complete")
    try:
        end = StreamEnd(end_text)
    except ValueError:
        raise f.error(
            f.line_of("end"), f"expected 'complete' or 'disconnect', got {end_text!r}", "end"
        ) from None
    end_at_ms = f.number("end_at_ms", None)
    if "events" in bodies:
        events = _events(f, plain, order)
        return RecordedResponse(
            status=status,
            headers=headers,
            time_to_headers_ms=time_to_headers,
            events=events,
            end=end,
            end_at_ms=end_at_ms,
        )
    if f.has("end") or f.has("end_at_ms"):
        key = "end" if f.has("end") else "end_at_ms"
        raise f.error(f.line_of(key), f"{key!r} only applies to a response with 'events'", key)
    binary = _binary(f.child("binary", _BINARY_KEYS)) if "binary" in bodies else None
    text = f.get("text", "the raw response body as a string", (str,))
    body = f.mapping.get("body")
    if "body" in bodies and not plain:
        _json(f, "body", body)
    return RecordedResponse(
        status=status,
        headers=headers,
        time_to_headers_ms=time_to_headers,
        body=body,
        text=text,
        binary=binary,
    )


def _binary(f: _Fields) -> Blob:
    """``binary: {sha256, size}``: a body kept beside the cassette (:mod:`.blobs`)."""
    sha256 = f.require("sha256", "the SHA-256 of the bytes, 64 lower-case hex digits", (str,))
    if not is_sha256(sha256):
        raise f.error(
            f.line_of("sha256"), f"expected 64 lower-case hex digits, got {sha256!r}", "sha256"
        )
    size = f.require("size", "the number of bytes", (int,))
    if size < 0:
        raise f.error(f.line_of("size"), f"expected a number of bytes, got {size}", "size")
    return Blob(sha256, size)


def recorded_at_of(f: _Fields) -> str | None:
    text: str | None = f.get("recorded_at", "a date and time such as 2026-05-01T12:00:00Z", (str,))
    if text is None:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise f.error(
            f.line_of("recorded_at"),
            f"expected an ISO 8601 date and time with a zone, such as 2026-05-01T12:00:00Z, "
            f"got {text!r}",
            "recorded_at",
        )
    return text
