"""The cassette source: recorded responses as plans the writer can send.

For each interaction served, everything that can be computed ahead is computed on first
use and kept with it: the response in the shape asked for (stream or JSON, see
:mod:`tapedeck.source.synthesized`), its wire headers and bytes, and one plan per timing
and set of faults that fired. Replaying the same interaction again costs a dictionary
lookup. Kept data belongs to the library's entry: when a recording replaces a cassette,
its old entries, and all that was kept for them, go.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from ..cassette.library import Entry
from ..cassette.model import RecordedResponse, StreamEnd
from ..pipeline import Ending, Head, Plan, Step, at_once
from ..shaping.faults import Fault
from ..shaping.shaper import shape_plan
from ..shaping.timing import Timing
from ..wire.headers import response_headers
from ..wire.sse import encode_event
from .batches import has_results_url, with_results_url
from .synthesized import convertible, in_shape

#: Plans kept per interaction; past this, they are computed afresh (clients that send
#: ever new timing specs or fault sets must not grow the server).
PLANS_PER_INTERACTION = 32
#: Endpoints whose answers can be converted between a stream and JSON.
CONVERTED_PATHS = frozenset({"/v1/messages"})


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


def render(response: RecordedResponse, extra: Sequence[tuple[str, str]]) -> Rendered:
    """``response`` rendered to wire bytes, with ``extra`` headers."""
    if response.events is not None:
        parts = tuple(encode_event(e.event, e.data) for e in response.events)
        headers = response_headers(response.headers, stream=True, extra=extra)
        return Rendered(response, Head(response.status, headers, stream=True), parts)
    if response.text is not None:
        payload = response.text.encode()
    elif response.body is not None:
        payload = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        payload = b""
    headers = response_headers(
        response.headers,
        stream=False,
        length=len(payload),
        json_body=response.text is None and bool(payload),
        extra=extra,
    )
    return Rendered(response, Head(response.status, headers, stream=False), (payload,))


def plan(rendered: Rendered, timing: Timing) -> Plan:
    """The plan that replays ``rendered`` with ``timing``."""
    response = rendered.response
    headers_at = timing.headers_at(response)
    if response.events is None:
        steps = [Step(headers_at, rendered.parts[0])]
        return at_once(Plan(rendered.head, headers_at, steps, headers_at))
    times = timing.event_times(response)
    steps = [
        Step(t, encoded, e.event, e.data)
        for t, encoded, e in zip(times, rendered.parts, response.events, strict=True)
    ]
    end_at = timing.end_at(response, times[-1] if times else headers_at)
    ending = Ending.CUT if response.end is StreamEnd.DISCONNECT else Ending.COMPLETE
    return at_once(Plan(rendered.head, headers_at, steps, end_at, ending))


class _Served:
    """What was computed for one interaction: rendered shapes and plans."""

    __slots__ = ("plans", "rendered", "rewrites")

    def __init__(self, entry: Entry) -> None:
        self.rendered: dict[bool, Rendered] = {}
        self.plans: dict[tuple[bool, Timing, tuple[Fault, ...]], Plan] = {}
        response = entry.interaction.response
        #: Whether the response names a URL on the server that must be the client's.
        self.rewrites = has_results_url(entry.interaction.request.path, response.body)


class CassetteSource:
    """Plans for the interactions of a library, computed once each and kept."""

    def __init__(self) -> None:
        self._served: weakref.WeakKeyDictionary[Entry, _Served] = weakref.WeakKeyDictionary()

    def plan(
        self, entry: Entry, *, stream: bool, timing: Timing, faults: tuple[Fault, ...], base: str
    ) -> Plan:
        """The plan answering with ``entry``'s response in the shape asked for (``stream``),
        paced by ``timing`` and shaped by ``faults``; ``base`` is the URL the client used."""
        served = self._served.get(entry)
        if served is None:
            served = self._served[entry] = _Served(entry)
        if served.rewrites:  # depends on the client's address: not kept
            response = with_results_url(self.response(entry, stream), base)
            return self._shaped(
                render(response, cassette_headers(entry.cassette.name)), timing, faults
            )
        shape = self.is_stream(entry, stream)
        key = (shape, timing, faults)
        found = served.plans.get(key)
        if found is None:
            rendered = served.rendered.get(shape)
            if rendered is None:
                response = self.response(entry, stream)
                rendered = render(response, cassette_headers(entry.cassette.name))
                served.rendered[shape] = rendered
            found = self._shaped(rendered, timing, faults)
            if len(served.plans) >= PLANS_PER_INTERACTION:
                served.plans.clear()
            served.plans[key] = found
        return found

    @staticmethod
    def response(entry: Entry, stream: bool) -> RecordedResponse:
        """``entry``'s recorded response in the shape asked for."""
        response = entry.interaction.response
        if entry.interaction.request.path in CONVERTED_PATHS:
            return in_shape(response, stream)
        return response

    @staticmethod
    def is_stream(entry: Entry, stream: bool) -> bool:
        """Whether ``entry`` answers a request that asks for ``stream`` with an event stream."""
        response = entry.interaction.response
        if entry.interaction.request.path in CONVERTED_PATHS and convertible(response, stream):
            return stream
        return response.is_stream

    @staticmethod
    def _shaped(rendered: Rendered, timing: Timing, faults: tuple[Fault, ...]) -> Plan:
        planned = plan(rendered, timing)
        return at_once(shape_plan(planned, faults)) if faults else planned
