"""Fault shaping: rewrite a stream plan so that it breaks the way a fault spec says.

The :class:`Shaper` sees the source's events one at a time, so the same rules can shape a
stream whose events are all known (a cassette) or arrive one by one. Counting is by
*source* events (recorded ``ping`` events included, injected ones not): ``after=3`` acts
once three source events have gone out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from .api_errors import error_type_for
from .cassette import RecordedResponse
from .faults import Fault, FaultKind
from .plan import Ending, Plan, Step
from .sse import encode_data, encode_event

PING = encode_event("ping", {"type": "ping"})

#: The API's messages for the error types a fault can send, where it has a fixed one.
DEFAULT_MESSAGES = {
    "overloaded_error": "Overloaded",
    "rate_limit_error": "Rate limited",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
}

_TERMINAL = (FaultKind.ERROR, FaultKind.OVERLOADED, FaultKind.TRUNCATE, FaultKind.DISCONNECT)


def error_message(fault: Fault) -> str:
    """The ``error.message`` a fault sends: its own, or the API's usual one for the type."""
    if fault.message is not None:
        return fault.message
    return DEFAULT_MESSAGES.get(fault.error_type, fault.error_type.replace("_", " ").capitalize())


def error_event(fault: Fault) -> bytes:
    """The in-stream ``event: error`` a fault of kind error/overloaded sends."""
    error = {"type": fault.error_type, "message": error_message(fault)}
    return encode_event("error", {"type": "error", "error": error})


def garbled(step: Step) -> Step:
    """``step`` with its data cut in half, so that it is no longer valid JSON."""
    text = encode_data(step.data)
    broken = text[: len(text) // 2] if len(text) > 1 else "{"
    return replace(step, encoded=encode_event(step.event or "message", broken))


class Shaper:
    """Applies stream faults to a source's events, one event at a time."""

    def __init__(self, faults: Sequence[Fault], cut_bytes: bool = True) -> None:
        self.stalls = [f for f in faults if f.kind is FaultKind.STALL]
        self.every = [f.every for f in faults if f.kind is FaultKind.PING and f.every]
        self.garbles = {f.after for f in faults if f.kind is FaultKind.GARBLE}
        terminal = [f for f in faults if f.kind in _TERMINAL and f.after_bytes is None]
        self.terminal = min(terminal, key=lambda f: f.after, default=None)
        self.byte_limit = byte_limit(faults) if cut_bytes else None
        self.count = 0
        self.shift = 0.0
        self.sent = 0
        #: Set once a fault ended the stream; later source events are dropped.
        self.ending: Ending | None = None

    def _stall(self) -> None:
        self.shift += sum(f.ms for f in self.stalls if f.after == self.count) / 1000

    def _terminal(self, at: float) -> list[Step] | None:
        fault = self.terminal
        if fault is None or fault.after != self.count:
            return None
        self.ending = Ending.CUT if fault.kind is FaultKind.DISCONNECT else Ending.COMPLETE
        if fault.kind in (FaultKind.ERROR, FaultKind.OVERLOADED):
            return [Step(at, error_event(fault), "error", None, source=False)]
        return []

    def _within_bytes(self, steps: list[Step]) -> list[Step]:
        if self.byte_limit is None:
            return steps
        kept, self.sent, reached = cut_at_bytes(steps, self.byte_limit, self.sent)
        if reached:
            self.ending = Ending.CUT
        return kept

    def feed(self, step: Step) -> list[Step]:
        """What to send for the next source event (nothing once ``ending`` is set)."""
        if self.ending is not None:
            return []
        self._stall()
        step = step.later(self.shift)
        stop = self._terminal(step.at)
        if stop is not None:
            return self._within_bytes(stop)
        # A garbled ping would go unnoticed (clients skip pings unread): garble the next
        # event that a client parses instead.
        if self.garbles and min(self.garbles) <= self.count and step.event != "ping":
            self.garbles.remove(min(self.garbles))
            step = garbled(step)
        self.count += 1
        out = [step]
        out.extend(
            Step(step.at, PING, "ping", None, False) for n in self.every if self.count % n == 0
        )
        return self._within_bytes(out)

    def finish(self, end_at: float) -> tuple[list[Step], float]:
        """At the source's end: what faults due now send, and the shifted end time."""
        if self.ending is not None:
            return [], end_at + self.shift
        self._stall()
        end_at += self.shift
        stop = self._terminal(end_at)
        return (self._within_bytes(stop) if stop else []), end_at


def cut_at_bytes(steps: list[Step], limit: int, sent: int = 0) -> tuple[list[Step], int, bool]:
    """The steps that fit in ``limit`` body bytes, ``sent`` already gone; the new byte
    count; whether the limit was reached (the last step kept may be cut short)."""
    kept: list[Step] = []
    for step in steps:
        room = limit - sent
        if len(step.encoded) >= room:
            if room > 0:
                kept.append(replace(step, encoded=step.encoded[:room]))
            return kept, limit, True
        kept.append(step)
        sent += len(step.encoded)
    return kept, sent, False


def byte_limit(faults: Sequence[Fault]) -> int | None:
    """The body size after which a ``disconnect:after_bytes`` fault cuts, if any."""
    return min((f.after_bytes for f in faults if f.after_bytes is not None), default=None)


def _interval_pings(plan: Plan, interval: float) -> list[Step]:
    steps: list[Step] = []
    last = plan.headers_at
    for step in [*plan.steps, None]:
        until = plan.end_at if step is None else step.at
        while last + interval < until:
            last += interval
            steps.append(Step(last, PING, "ping", None, False))
        if step is not None:
            steps.append(step)
            last = step.at
    return steps


def shape(plan: Plan, faults: Sequence[Fault]) -> Plan:
    """Apply ``faults`` (already chosen to fire) to a stream plan; return the new plan."""
    latency = sum(f.ms for f in faults if f.kind is FaultKind.LATENCY) / 1000
    # Bytes are counted last, once interval pings are in: they are part of the body too.
    shaper = Shaper(faults, cut_bytes=False)
    steps: list[Step] = []
    for step in plan.steps:
        steps.extend(shaper.feed(step.later(latency)))
        if shaper.ending is not None:
            break
    if shaper.ending is None:
        tail, end_at = shaper.finish(plan.end_at + latency)
        steps.extend(tail)
        ending = shaper.ending or plan.ending
    else:
        end_at = steps[-1].at if steps else plan.headers_at + latency
        ending = shaper.ending
    shaped = Plan(plan.headers_at + latency, steps, end_at, ending)
    for fault in faults:
        if fault.kind is FaultKind.PING and fault.interval_ms:
            shaped.steps = _interval_pings(shaped, fault.interval_ms / 1000)
    limit = byte_limit(faults)
    if limit is not None:
        kept, _, reached = cut_at_bytes(shaped.steps, limit)
        if reached:
            shaped.steps = kept
            shaped.end_at = kept[-1].at if kept else shaped.headers_at
            shaped.ending = Ending.CUT
    return shaped


def status_response(fault: Fault, request_id: str) -> RecordedResponse:
    """The HTTP error a ``status`` fault answers with, in the API's shape."""
    error_type = error_type_for(fault.code)
    message = (
        fault.message
        if fault.message is not None
        else DEFAULT_MESSAGES.get(error_type, error_type.replace("_", " ").capitalize())
    )
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    headers = [("content-type", "application/json"), ("request-id", request_id)]
    if fault.retry_after is not None:
        headers.append(("retry-after", f"{fault.retry_after:g}"))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", f"{fault.retry_after_ms:g}"))
    if fault.should_retry is not None:
        headers.append(("x-should-retry", "true" if fault.should_retry else "false"))
    payload = json.dumps(body).encode()
    return RecordedResponse(fault.code, tuple(headers), body=body, payload=payload)
