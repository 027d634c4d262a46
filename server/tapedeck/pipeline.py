"""The values that flow through tapedeck, from a source to the wire.

Every response takes the same path::

    source ──► recording tap ──► shaper ──► writer
    (cassette | upstream | synthesized)   (timing, faults)   (SSE bytes, deadlines, cuts)

- A **source** gives a :class:`Head` and then :class:`Step` s: all at once when they are
  known in advance (a cassette, a synthesized stream, an error — a :class:`Plan`), or as
  they arrive (the upstream — a :class:`LiveSource`).
- The **recording tap** (:mod:`tapedeck.record.tap`) sits on a live source and keeps what
  the source sent, before any fault touches it.
- The **shaper** (:mod:`tapedeck.shaping.shaper`) rewrites the steps as the faults that
  fired say; a plan is shaped once and the result kept.
- The **writer** (:mod:`tapedeck.wire.writer`) sends the head and each step at its
  deadline, ends or cuts the body, and stops at once if the client goes away.

Times are seconds after the request arrived, on :func:`time.perf_counter`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

WireHeaders = list[tuple[bytes, bytes]]


class Ending(enum.StrEnum):
    """How the body ends once the last step is sent."""

    #: Finish the body normally.
    COMPLETE = "complete"
    #: Drop the connection without finishing the body.
    CUT = "cut"


@dataclass(frozen=True, slots=True)
class Head:
    """The status line and headers of a response, and whether its body is an event stream."""

    status: int
    headers: WireHeaders
    stream: bool


@dataclass(frozen=True, slots=True)
class Step:
    """Bytes to send at ``at``. ``event``/``data`` say what they encode, for shaping."""

    at: float
    encoded: bytes
    event: str = ""
    data: object = None
    #: True for what the source sent; False for what shaping inserted.
    source: bool = True

    def later(self, seconds: float) -> Step:
        return replace(self, at=self.at + seconds) if seconds else self


@dataclass(frozen=True, slots=True)
class Plan:
    """A whole response known in advance: head, steps, and how and when the body ends.

    ``ping_interval`` and ``byte_limit`` are the rules only the writer can apply, because
    they depend on when bytes actually go out (a ping whenever the stream has been idle
    that long; a cut once that many body bytes, pings included, are out).
    """

    head: Head
    headers_at: float
    steps: Sequence[Step]
    end_at: float
    ending: Ending = Ending.COMPLETE
    ping_interval: float | None = None
    byte_limit: int | None = None
    #: Every step joined, when nothing needs to wait: the body goes out in one send.
    body: bytes | None = None
    #: Where the faults that shaped it acted, worked out once when it was shaped: each
    #: fault's spec and the indices of the events it inserted, changed or stopped before
    #: (pings the writer adds whenever the body is idle are not counted in them).
    acted: tuple[tuple[str, tuple[int, ...]], ...] = ()


def at_once(plan: Plan) -> Plan:
    """``plan`` with :attr:`Plan.body` set if every part of it is due at once."""
    if (
        plan.headers_at <= 0
        and plan.end_at <= 0
        and plan.ping_interval is None
        and plan.byte_limit is None
        and all(s.at <= 0 for s in plan.steps)
    ):
        return replace(plan, body=b"".join(s.encoded for s in plan.steps))
    return plan


def wait_over(plan: Plan, limit: float) -> tuple[float, str] | None:
    """The first wait in ``plan`` longer than ``limit`` seconds, and where it is (``before
    the headers``, ``before event 3``, ``before the end``); ``None`` if there is none."""
    waits = [(plan.headers_at, "before the headers")]
    if plan.head.stream:
        waits += [(s.at, f"before event {i + 1}") for i, s in enumerate(plan.steps)]
        waits.append((plan.end_at, "before the end"))
    previous = 0.0
    for at, where in waits:
        wait = at - previous
        if not wait <= limit:  # NaN and infinity included
            return wait, where
        previous = max(previous, at)
    return None


class LiveSource(Protocol):
    """A response whose body arrives while it is being sent (the upstream)."""

    @property
    def head(self) -> Head:
        """The status and headers, already received."""
        ...

    @property
    def ending(self) -> Ending:
        """The body's ending, known once :meth:`batches` is exhausted."""
        ...

    def batches(self) -> AsyncIterator[Sequence[Step]]:
        """The source's steps, in the groups they arrived in."""
        ...

    async def done(self, passed_on: bool) -> Plan | None:
        """Called once before the last bytes go out: ``passed_on`` is False if shaping
        ended the stream before the source did. A whole (non-stream) body may be answered
        instead by the plan returned."""
        ...


class LiveShaping(Protocol):
    """What the writer asks of the shaper (:class:`tapedeck.shaping.shaper.Shaper`) while it
    passes a live source on: the rules that depend on when bytes leave, and each step
    shaped as it arrives."""

    #: Seconds the headers (and everything after them) are held back.
    latency: float
    #: Send a ``ping`` whenever the body has been idle this many seconds (``None``: never).
    ping_interval: float | None
    #: Cut the connection once this many body bytes are out (``None``: never).
    byte_limit: int | None
    #: How a fault ended the stream, once one has (``None`` until then).
    ending: Ending | None

    def feed(self, step: Step) -> list[Step]:
        """The steps to send for one source step."""
        ...

    def finish(self, end_at: float) -> tuple[list[Step], float]:
        """The steps due after the source's last (faults that act at the end)."""
        ...
