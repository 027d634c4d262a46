"""Synthesized responses: one recording, both shapes.

Matching ignores the request's ``stream`` field, so a request may match a recording made
in the other shape. The SDK's final message is the same either way:

- a streamed recording asked for as JSON is answered with the Message its events
  assemble into, after the whole stream's time (time to headers plus the last event);
  a stream that ended in an ``error`` event becomes that error as an HTTP error (e.g. an
  ``overloaded_error`` becomes a 529); a stream the upstream cut becomes a JSON answer
  cut the same way — its headers, then half of its body and a dropped connection — as a
  client would see an upstream that broke off (the SDKs raise a connection error);
- a JSON Message recording asked for as a stream is answered with a synthesized stream:
  the headers at the recorded time, then the events at once (a JSON recording has no
  event timing to replay).

Error responses (status 400 and above) are served as recorded whatever was asked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..cassette.message_stream import assemble, synthesize
from ..cassette.model import RecordedEvent, RecordedResponse, StreamEnd
from ..errors import StreamError
from ..wire.errors import error_body, status_for
from ..wire.headers import JSON_CONTENT_TYPE, SSE_CONTENT_TYPE

_CONTENT_HEADERS = ("content-type", "content-length", "cache-control")


def _is_message(body: Any) -> bool:
    return isinstance(body, dict) and body.get("type") == "message"


def convertible(response: RecordedResponse, wants_stream: bool) -> bool:
    """True if ``response`` must change shape to answer a request that wants a stream or not."""
    if response.status >= 400 or response.is_stream == wants_stream:
        return False
    return response.is_stream or _is_message(response.body)


def _headers(response: RecordedResponse, content_type: str) -> tuple[tuple[str, str], ...]:
    kept = [(k, v) for k, v in response.headers if k not in _CONTENT_HEADERS]
    return (("content-type", content_type), *kept)


def as_json(response: RecordedResponse) -> RecordedResponse:
    """A streamed recording as the JSON response the API would have given."""
    events = response.events or ()
    last = events[-1].at_ms if events else 0.0
    try:
        body: dict[str, Any] = assemble((e.event, e.data) for e in events)
        status = 200
    except StreamError as exc:
        error_type = exc.type or "api_error"
        body = error_body(error_type, exc.message or "")
        status = status_for(error_type)
    return RecordedResponse(
        status,
        _headers(response, JSON_CONTENT_TYPE),
        response.time_to_headers_ms + last,
        body=body,
        end=response.end if status == 200 else StreamEnd.COMPLETE,
    )


def as_stream(response: RecordedResponse) -> RecordedResponse:
    """A JSON Message recording as the event stream the API would have sent."""
    events = tuple(RecordedEvent(name, data, 0.0) for name, data in synthesize(response.body))
    return replace(response, headers=_headers(response, SSE_CONTENT_TYPE), body=None, events=events)


def in_shape(response: RecordedResponse, wants_stream: bool) -> RecordedResponse:
    """``response`` as a stream or as JSON, as the request asks (see the module docs)."""
    if not convertible(response, wants_stream):
        return response
    return as_stream(response) if wants_stream else as_json(response)
