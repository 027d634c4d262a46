"""Fault shaping: rewrite a source's steps the way the faults that fired say.

One :class:`Shaper` applies every fault kind to any source, one source event at a time: to
a plan known in advance (:func:`shape_plan`, done once and kept by the cassette source) and
to a live upstream stream as its events arrive (the writer feeds it). Counting is by
*source* events (recorded ``ping`` events included, injected ones not): ``after=3`` acts
once three source events have gone out.

What depends on when bytes actually leave — pings whenever the stream has been idle
``ping:interval`` long, and the byte count of ``disconnect:after_bytes``, pings included —
the writer applies, with the rules the shaper states (:attr:`Shaper.ping_interval`,
:attr:`Shaper.byte_limit`, :class:`~tapedeck.wire.flow.ByteMeter`). A plan without interval
pings gets its byte cut here, in advance.

To add a fault kind: its keys in :mod:`tapedeck.shaping.faults`, its effect here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from ..errors import error_type_for
from ..pipeline import Ending, Head, Plan, Step
from ..wire.errors import error_body, error_event, new_request_id
from ..wire.flow import ByteMeter
from ..wire.headers import encode_headers
from ..wire.sse import PING, encode_data, encode_event
from .faults import Fault, FaultKind, listed

_TERMINAL = (FaultKind.ERROR, FaultKind.OVERLOADED, FaultKind.TRUNCATE, FaultKind.DISCONNECT)
#: The header that lists the faults that fired on a response.
FAULTS_HEADER = "x-tapedeck-faults"


def garbled(step: Step) -> Step:
    """``step`` with its data cut in half, so that it is no longer valid JSON."""
    text = encode_data(step.data)
    broken = text[: len(text) // 2] if len(text) > 1 else "{"
    return replace(step, encoded=encode_event(step.event or "message", broken))


class Shaper:
    """Applies the stream faults that fired to a source's events, one event at a time."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        #: Seconds the headers (and everything after them) are held back.
        self.latency = sum(f.ms for f in faults if f.kind is FaultKind.LATENCY) / 1000
        intervals = [f.interval_ms for f in faults if f.kind is FaultKind.PING and f.interval_ms]
        #: Send a ``ping`` whenever the body has been idle this many seconds.
        self.ping_interval = min(intervals) / 1000 if intervals else None
        limits = [f.after_bytes for f in faults if f.after_bytes is not None]
        #: Cut the connection once this many body bytes are out.
        self.byte_limit = min(limits) if limits else None
        self.stalls = [f for f in faults if f.kind is FaultKind.STALL]
        self.every = [(f.every, f) for f in faults if f.kind is FaultKind.PING and f.every]
        garbles: dict[int, list[Fault]] = {}
        for f in faults:
            if f.kind is FaultKind.GARBLE:
                garbles.setdefault(f.after, []).append(f)
        #: Garble faults by the position they act from, in order (one garble per position).
        self.garbles = sorted(garbles.items(), key=lambda item: item[0])
        terminal = [f for f in faults if f.kind in _TERMINAL and f.after_bytes is None]
        self.terminal = min(terminal, key=lambda f: f.after, default=None)
        self.count = 0
        self.shift = self.latency
        #: Set once a fault ended the stream; later source events are dropped.
        self.ending: Ending | None = None
        #: Events put out so far: the index the next one gets.
        self.sent = 0
        #: Where each fault acted: the indices of the events it inserted or changed, or
        #: that came late or never came because of it.
        self.acted: dict[Fault, list[int]] = {}

    def _act(self, fault: Fault, index: int) -> None:
        self.acted.setdefault(fault, []).append(index)

    def _stall(self) -> None:
        stalled = [f for f in self.stalls if f.after == self.count]
        for fault in stalled:
            self._act(fault, self.sent)
        self.shift += sum(f.ms for f in stalled) / 1000

    def _terminal(self, at: float) -> list[Step] | None:
        fault = self.terminal
        if fault is None or fault.after != self.count:
            return None
        self._act(fault, self.sent)
        self.ending = Ending.CUT if fault.kind is FaultKind.DISCONNECT else Ending.COMPLETE
        if fault.kind in (FaultKind.ERROR, FaultKind.OVERLOADED):
            self.sent += 1
            return [Step(at, error_event(fault.error_type, fault.message), "error", None, False)]
        return []

    def feed(self, step: Step) -> list[Step]:
        """What to send for the next source event (nothing once :attr:`ending` is set)."""
        if self.ending is not None:
            return []
        if self.stalls:
            self._stall()
        step = step.later(self.shift)
        stop = self._terminal(step.at)
        if stop is not None:
            return stop
        # A garbled ping would go unnoticed (clients skip pings unread): garble the next
        # event that a client parses instead.
        if self.garbles and self.garbles[0][0] <= self.count and step.event != "ping":
            for fault in self.garbles.pop(0)[1]:
                self._act(fault, self.sent)
            step = garbled(step)
        self.count += 1
        self.sent += 1
        out = [step]
        for every, fault in self.every:
            if self.count % every == 0:
                self._act(fault, self.sent)
                self.sent += 1
                out.append(Step(step.at, PING, "ping", None, False))
        return out

    def finish(self, end_at: float) -> tuple[list[Step], float]:
        """At the source's end: what faults due now send, and the shifted end time."""
        if self.ending is not None:
            return [], end_at + self.shift
        self._stall()
        end_at += self.shift
        return self._terminal(end_at) or [], end_at

    def where(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Where each fault acted, by its spec (for :attr:`Plan.acted`)."""
        return tuple((f.text, tuple(at)) for f, at in self.acted.items())


def shape_plan(plan: Plan, faults: Sequence[Fault]) -> Plan:
    """``plan`` as the ``faults`` that fired on it shape it, listed in its headers."""
    shaper = Shaper(faults)
    head = replace(plan.head, headers=[*plan.head.headers, *encode_headers([fault_header(faults)])])
    headers_at = plan.headers_at + shaper.latency
    if not plan.head.stream:  # only latency applies to a whole body
        later = [s.later(shaper.latency) for s in plan.steps]
        return replace(
            plan, head=head, headers_at=headers_at, steps=later, end_at=headers_at, body=None
        )
    steps: list[Step] = []
    for step in plan.steps:
        steps.extend(shaper.feed(step))
        if shaper.ending is not None:
            break
    if shaper.ending is None:
        tail, end_at = shaper.finish(plan.end_at)
        steps.extend(tail)
        ending = shaper.ending or plan.ending
    else:
        end_at = steps[-1].at if steps else headers_at
        ending = shaper.ending
    limit = shaper.byte_limit
    if limit is not None and shaper.ping_interval is None:
        whole = steps
        steps, cut = cut_at_bytes(steps, limit)
        if cut:
            end_at, ending = (steps[-1].at if steps else headers_at), Ending.CUT
            # The first event not sent whole: the one the cut fell in, or the next.
            at = len(steps) - (1 if steps and steps[-1] is not whole[len(steps) - 1] else 0)
            for fault in faults:
                if fault.after_bytes == limit:
                    shaper._act(fault, at)
        limit = None
    return Plan(
        head, headers_at, steps, end_at, ending, shaper.ping_interval, limit, acted=shaper.where()
    )


def cut_at_bytes(steps: Sequence[Step], limit: int) -> tuple[list[Step], bool]:
    """The steps that fit in ``limit`` body bytes (the last may be cut short), and whether
    the limit was reached."""
    meter = ByteMeter(limit)
    kept: list[Step] = []
    for step in steps:
        data = meter.take(step.encoded)
        if data:
            kept.append(step if len(data) == len(step.encoded) else replace(step, encoded=data))
        if meter.reached:
            return kept, True
    return kept, False


def fault_header(faults: Sequence[Fault]) -> tuple[str, str]:
    """The ``x-tapedeck-faults`` header listing ``faults``."""
    return (FAULTS_HEADER, listed(faults))


def replacement(faults: Sequence[Fault]) -> Fault | None:
    """The fault that answers instead of the response (a ``status`` fault), if one fired."""
    return next((f for f in faults if f.kind is FaultKind.STATUS), None)


def status_plan(fault: Fault, fired: Sequence[Fault], extra: Sequence[tuple[str, str]]) -> Plan:
    """The HTTP error a ``status`` fault answers with, in the API's shape, after any latency."""
    request_id = new_request_id()
    body = error_body(error_type_for(fault.code), fault.message, request_id)
    payload = json.dumps(body, ensure_ascii=False).encode()
    headers = [("content-type", "application/json"), ("request-id", request_id)]
    if fault.retry_after is not None:
        headers.append(("retry-after", f"{fault.retry_after:g}"))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", f"{fault.retry_after_ms:g}"))
    if fault.should_retry is not None:
        headers.append(("x-should-retry", "true" if fault.should_retry else "false"))
    headers += [("content-length", str(len(payload))), fault_header(fired), *extra]
    at = Shaper(fired).latency
    head = Head(fault.code, encode_headers(headers), stream=False)
    return Plan(head, at, [Step(at, payload)], at)
