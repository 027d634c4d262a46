"""Sending a response's parts at their deadlines: the state of one response being sent,
its head, its body through the byte meter, idle pings while it waits, and the parts due
together in one send (:class:`Pacer`, which :class:`~tapedeck.wire.writer.Writer` extends
with its entry points, live sources and the client leaving).

Every send goes through the client's :class:`~tapedeck.wire.flow.Outlet`, which holds it
while the client's buffer is full (:mod:`tapedeck.wire.flow`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from ..errors import StreamCut
from ..pipeline import Ending, Head, Plan, Step
from .drain import Drain
from .flow import CONNECTION, ByteMeter, Outlet
from .sse import PING

#: Events due within this much of the next send go out with it: waking up for each
#: would only add the event loop's ~1 ms timer granularity as lateness.
COALESCE_S = 0.0005
_COMPLETE = Ending.COMPLETE


class Pacer:
    """One response being sent to an ASGI ``send``; ``started`` is when the request arrived.

    ``started`` is a :func:`time.perf_counter` reading: the event loop's own clock may be
    cached at millisecond resolution (uvloop), too coarse for event deadlines.
    """

    __slots__ = (
        "_drain",
        "_interval",
        "_last",
        "_meter",
        "_outlet",
        "bytes",
        "client_left",
        "cut_at",
        "events",
        "pings",
        "receive",
        "scope",
        "sent_all",
        "started",
        "status",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, started: float) -> None:
        self.scope = scope
        self.receive = receive
        self.started = started
        #: The status once the headers have gone out (0 before).
        self.status = 0
        #: Body bytes and events sent.
        self.bytes = 0
        self.events = 0
        #: The client has everything it will get: a departure after this is none.
        self.sent_all = False
        #: The client went away before the response was complete.
        self.client_left = False
        #: The indices of the idle pings sent (``ping:interval``), once there are any.
        self.pings: list[int] | None = None
        #: The first event not sent whole when the byte limit cut the body.
        self.cut_at: int | None = None
        self._last = 0.0
        self._interval: float | None = None
        self._meter: ByteMeter | None = None
        self._drain: Drain | None = None
        state = scope.get("state")
        self._outlet = Outlet(send, state.get(CONNECTION) if state else None)

    @property
    def too_slow(self) -> str:
        """Why the client was cut for reading too slowly ("" if it was not)."""
        return self._outlet.too_slow

    @property
    def gave_up(self) -> str:
        """Why a live source was not read to its end after the client left (``""``: it was,
        or it was not to be): then it was not told it was over, and nothing was recorded."""
        return self._drain.gave_up if self._drain is not None else ""

    # -- sending -------------------------------------------------------------------------

    async def _start(self, head: Head) -> None:
        self.status = head.status
        start = {"type": "http.response.start", "status": head.status, "headers": head.headers}
        outlet = self._outlet
        if outlet.conn is None or not outlet.conn.full:
            await outlet.send(start)
        else:
            await outlet.out(start)
        self._last = time.perf_counter()

    async def _body(self, data: bytes, events: int, steps: Sequence[Step] = (), i: int = 0) -> bool:
        """Send body bytes, ``events`` events (``steps[i:i + events]``, or a ping), through
        the byte meter; False once the meter says cut."""
        meter = self._meter
        if meter is not None:
            room, size = meter.limit - meter.sent, len(data)
            data = meter.take(data)
            if meter.reached:
                sizes = [len(s.encoded) for s in steps[i : i + events]] if steps else [size]
                self.cut_at = self.events + _whole(sizes, room)
        if data:
            await self._outlet.write(data, True)
            self.bytes += len(data)
            self.events += events
            self._last = time.perf_counter()
        return meter is None or not meter.reached

    async def _end(self) -> bool:
        self.sent_all = True
        await self._outlet.out({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    async def _at_once(self, plan: Plan, body: bytes, last: bool = False) -> bool:
        """Send a whole response known at once; False if the body must be left unfinished
        (``last``: raise :class:`StreamCut` instead, nothing is to follow it)."""
        complete = plan.ending is _COMPLETE
        head = plan.head
        self.status = head.status
        self.sent_all = True
        outlet = self._outlet
        conn, send = outlet.conn, outlet.send
        if conn is not None and conn.full:
            await outlet.wait_for_client(conn)
        together = conn is None or (len(body) <= conn.piece and not conn.full)
        if together and conn is not None and body and self.scope["method"] != "HEAD":
            conn.hold_head()  # the head and the body in one write
        await send({"type": "http.response.start", "status": head.status, "headers": head.headers})
        if together:
            await send({"type": "http.response.body", "body": body, "more_body": not complete})
        else:
            await self._outlet.write(body, not complete)
        self.bytes += len(body)
        self.events += len(plan.steps) if head.stream else 0
        if last and not complete:
            raise StreamCut("cut as planned")
        return complete

    def _due(self, at: float) -> bool:
        """Whether ``at`` is now (within :data:`COALESCE_S`) with no idle ping to send:
        then there is nothing to wait for (nor a coroutine to make for it)."""
        return self._interval is None and self.started + at - time.perf_counter() <= COALESCE_S

    async def _until(self, at: float) -> bool:
        """Wait until ``at``, sending idle pings meanwhile; False if a ping reached the
        byte limit."""
        deadline = self.started + at
        interval = self._interval
        while interval is not None and self.status:
            ping_due = self._last + interval
            if ping_due >= deadline:
                break
            delay = ping_due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            self._pinged()
            if not await self._body(PING, 1):
                return False
        delay = deadline - time.perf_counter()
        if delay > COALESCE_S:
            await asyncio.sleep(delay)
        return True

    async def _steps(self, steps: Sequence[Step]) -> bool:
        """Send ``steps`` on their deadlines, those due together in one send (no more than
        a piece of the client's buffer at once: a writer waiting on a slow client must not
        hold a join of everything that fell due meanwhile)."""
        i, count = 0, len(steps)
        conn = self._outlet.conn
        most = conn.piece if conn is not None else 1 << 62
        while i < count:
            if not self._due(steps[i].at) and not await self._until(steps[i].at):
                return False
            due = time.perf_counter() - self.started + COALESCE_S
            j, size = i + 1, len(steps[i].encoded)
            while j < count and steps[j].at <= due:
                size += len(steps[j].encoded)
                if size > most:
                    break
                j += 1
            body = steps[i].encoded if j == i + 1 else b"".join(s.encoded for s in steps[i:j])
            if not await self._body(body, j - i, steps, i):
                return False
            i = j
        return True

    def _now(self) -> float:
        return time.perf_counter() - self.started

    def _pinged(self) -> None:
        """Note the index of the idle ping about to go out."""
        if self.pings is None:
            self.pings = []
        self.pings.append(self.events)


def _whole(sizes: Sequence[int], room: int) -> int:
    """How many of the parts of ``sizes`` bytes fit whole in ``room`` bytes."""
    count = 0
    for size in sizes:
        if size > room:
            break
        room -= size
        count += 1
    return count
