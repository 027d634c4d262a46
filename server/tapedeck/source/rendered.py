"""A recorded response as it goes on the wire: rendered to its head and bytes
(:class:`Rendered`, :func:`render`) with tapedeck's headers (:func:`cassette_headers`), and
the plan that replays it with a timing (:func:`plan`). :mod:`tapedeck.source.cassette` keeps
them per interaction served."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..cassette.model import RecordedResponse, StreamEnd
from ..pipeline import Ending, Head, Plan, Step, at_once
from ..shaping.timing import Timing
from ..wire.headers import response_headers
from ..wire.sse import encode_event

__all__ = ["Rendered", "cassette_headers", "plan", "render"]


def cassette_headers(name: str) -> list[tuple[str, str]]:
    """The headers tapedeck adds to a response replayed from cassette ``name``."""
    return [("x-tapedeck-cassette", name), ("x-tapedeck-source", "cassette")]


@dataclass(frozen=True, slots=True)
class Rendered:
    """One recorded response as it goes on the wire."""

    response: RecordedResponse
    head: Head
    #: Each event's bytes (a stream), or the one whole body.
    parts: tuple[bytes, ...]


def render(
    response: RecordedResponse, extra: Sequence[tuple[str, str]], binary: bytes = b""
) -> Rendered:
    """``response`` rendered to wire bytes, with ``extra`` headers; ``binary`` is the body
    of a ``binary`` response (kept beside its cassette)."""
    if response.events is not None:
        parts = tuple(encode_event(e.event, e.data) for e in response.events)
        headers = response_headers(response.headers, stream=True, extra=extra)
        return Rendered(response, Head(response.status, headers, stream=True), parts)
    if response.text is not None:
        payload = response.text.encode()
    elif response.binary is not None:
        payload = binary
    elif response.body is not None:
        payload = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        payload = b""
    headers = response_headers(
        response.headers,
        stream=False,
        length=len(payload),
        json_body=response.text is None and response.binary is None and bool(payload),
        extra=extra,
    )
    return Rendered(response, Head(response.status, headers, stream=False), (payload,))


def plan(rendered: Rendered, timing: Timing) -> Plan:
    """The plan that replays ``rendered`` with ``timing``."""
    response = rendered.response
    headers_at = timing.headers_at(response)
    if response.events is None:
        body = rendered.parts[0]
        if response.end is StreamEnd.DISCONNECT:  # a cut recording, asked for as JSON
            cut = [Step(headers_at, body[: len(body) // 2])]
            return at_once(Plan(rendered.head, headers_at, cut, headers_at, Ending.CUT))
        steps = [Step(headers_at, body)]
        return at_once(Plan(rendered.head, headers_at, steps, headers_at))
    times = timing.event_times(response)
    steps = [
        Step(t, encoded, e.event, e.data)
        for t, encoded, e in zip(times, rendered.parts, response.events, strict=True)
    ]
    end_at = timing.end_at(response, times[-1] if times else headers_at)
    ending = Ending.CUT if response.end is StreamEnd.DISCONNECT else Ending.COMPLETE
    return at_once(Plan(rendered.head, headers_at, steps, end_at, ending))
