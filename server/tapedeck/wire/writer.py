"""The writer: one ASGI response, each part sent at its deadline.

It sends a :class:`~tapedeck.pipeline.Plan` (a response known in advance) or a
:class:`~tapedeck.pipeline.LiveSource` (a body that arrives as it is sent), ends the body or
cuts the connection as the plan says, and applies the two rules that depend on when bytes
really go out: a ``ping`` whenever the body has been idle for the plan's ping interval, and
a cut once its byte limit is reached (pings count).

A plan whose parts are all due at once goes out in one send, with nothing else running.
Anything that waits runs while a second task listens for the client going away, so an
abandoned response stops at once (and an upstream request is cancelled) instead of
sleeping on — unless the live source is being recorded: then it is read on after the client
left, for a bounded time, so that the upstream's whole answer is still recorded
(:mod:`tapedeck.wire.drain`).

Every send goes through the client's :class:`~tapedeck.wire.flow.Outlet`, which holds it
while the client's buffer is full (:mod:`tapedeck.wire.flow`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from starlette.types import Receive, Scope, Send

from ..errors import StreamCut
from ..pipeline import Ending, Head, LiveShaping, LiveSource, Plan, Step
from .drain import Drain
from .flow import CONNECTION, ByteMeter, Outlet
from .sse import PING

#: Events due within this much of the next send go out with it: waking up for each
#: would only add the event loop's ~1 ms timer granularity as lateness.
COALESCE_S = 0.0005
#: Events after which the API sends nothing more: once one is out, a client that leaves
#: has all it wanted (the SDK closes the connection after an ``error`` event).
LAST_EVENTS = frozenset({"message_stop", "error"})

Opener = Callable[[], Awaitable["LiveSource | Plan"]]
_COMPLETE = Ending.COMPLETE


class Writer:
    """Sends one response to an ASGI ``send``; ``started`` is when the request arrived.

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

    # -- entry points ------------------------------------------------------------------

    def plan(self, plan: Plan) -> Awaitable[bool]:
        """Send ``plan`` (await it); raise :class:`StreamCut` where it cuts the connection.

        Not a coroutine itself: an answer due at once (the usual replayed one) is sent by
        the coroutine this returns, one coroutine less per response."""
        if plan.body is not None:
            return self._at_once(plan, plan.body, True)
        return self._timed(plan)

    async def _timed(self, plan: Plan) -> bool:
        if not await self._watched(lambda: self._plan(plan)):
            raise StreamCut("cut as planned")
        return True

    async def live(
        self, open_source: Opener, shaper: LiveShaping | None, drain: Drain | None = None
    ) -> None:
        """Open a live source (or get the plan that answers instead) and send it, shaped by
        ``shaper``; raise :class:`StreamCut` where it cuts the connection.

        ``drain``: how the source is read on if the client leaves (``None``: it is not, the
        read in progress is cancelled)."""
        self._drain = reading = drain

        async def run() -> bool:
            opened = await (open_source() if reading is None else reading.open(open_source))
            if isinstance(opened, Plan):
                return await self._plan(opened)
            return await self._live(opened, shaper)

        if not await self._watched(run):
            raise StreamCut("cut as the source or a fault did")

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

    async def _plan(self, plan: Plan) -> bool:
        """Send a plan part by part; False if the body must be left unfinished."""
        if plan.body is not None:
            return await self._at_once(plan, plan.body)
        self._interval = plan.ping_interval
        self._meter = ByteMeter(plan.byte_limit) if plan.byte_limit is not None else None
        if not self._due(plan.headers_at):
            await self._until(plan.headers_at)
        if not plan.head.stream:
            return await self._at_once(plan, b"".join(s.encoded for s in plan.steps))
        conn = self._outlet.conn
        if (
            conn is not None
            and plan.steps
            and self._meter is None
            and self._due(plan.steps[0].at)
            and self.scope["method"] != "HEAD"
        ):
            conn.hold_head()  # the head and the first events in one write
        await self._start(plan.head)
        if not await self._steps(plan.steps) or not await self._until(plan.end_at):
            return False
        if plan.ending is Ending.CUT:
            return False
        return await self._end()

    async def _live(self, source: LiveSource, shaper: LiveShaping | None) -> bool:
        """Pass a live source on as its steps arrive; False if the body must be cut."""
        if shaper is not None:
            self._interval = shaper.ping_interval
            if shaper.byte_limit is not None:
                self._meter = ByteMeter(shaper.byte_limit)
            await self._until(self._now() + shaper.latency)
        batches = source.batches()
        drain = self._drain
        if drain is not None:
            drain.batches = batches
        if not source.head.stream:
            body = b"".join([s.encoded async for batch in batches for s in batch])
            # Before answering: the next request may replay it.
            instead = await self._done(source, True)
            if instead is not None:
                return await self._plan(instead)
            await self._start(source.head)
            self.sent_all = True
            await self._outlet.write(body, False)
            self.bytes += len(body)
            return True
        await self._start(source.head)
        while (batch := await self._next(batches)) is not None:
            out = batch if shaper is None else [s for step in batch for s in shaper.feed(step)]
            if not await self._steps(out) or (self._meter is not None and self._meter.reached):
                return False
            if any(s.source and s.event in LAST_EVENTS for s in out):
                self.sent_all = True
            if shaper is not None and shaper.ending is not None:
                break
        self.sent_all = True
        if shaper is not None and shaper.ending is None:
            tail, _ = shaper.finish(self._now())
            if not await self._steps(tail):
                return False
        if shaper is not None and shaper.ending is not None:
            # A fault ended the stream before the source did: not what the API sent.
            await self._done(source, False)
            return shaper.ending is Ending.COMPLETE and await self._end()
        await self._done(source, True)
        return source.ending is Ending.COMPLETE and await self._end()

    async def _done(self, source: LiveSource, passed_on: bool) -> Plan | None:
        drain = self._drain
        return await (source.done(passed_on) if drain is None else drain.done(source, passed_on))

    async def _next(self, batches: AsyncIterator[Sequence[Step]]) -> Sequence[Step] | None:
        """The next batch of a live source, sending idle pings while waiting for it."""
        interval, drain = self._interval, self._drain
        if interval is None:
            if drain is None:
                return await anext(batches, None)
            return await drain.guard(anext(batches, None))
        waiting = asyncio.ensure_future(anext(batches, None))
        if drain is not None:
            drain.pending = waiting
        try:
            while True:
                timeout = max(self._last + interval - time.perf_counter(), 0.0)
                done, _ = await asyncio.wait({waiting}, timeout=timeout)
                if done:
                    return waiting.result()
                self._pinged()
                if not await self._body(PING, 1):
                    return ()  # the byte limit was reached: the caller cuts
        finally:
            if not waiting.done() and (drain is None or not self.client_left):
                waiting.cancel()

    def _now(self) -> float:
        return time.perf_counter() - self.started

    def _pinged(self) -> None:
        """Note the index of the idle ping about to go out."""
        if self.pings is None:
            self.pings = []
        self.pings.append(self.events)

    # -- the client leaving -------------------------------------------------------------

    async def _watched(self, play: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``play()``, cancelling it if the client disconnects first.

        Returns what ``play()`` returned (False: cut the connection), or True if the client
        left, since then nobody is left to cut off. A disconnect reported after the response
        was complete is no departure. A live source being drained is read on once the
        client left (:meth:`Drain.read_on`) before this returns.
        """
        # Plain asyncio rather than a task group: this runs once per timed response, and a
        # callback (or, without tapedeck's HTTP protocol, a watcher task) plus a cancel is
        # all it takes.
        player = asyncio.current_task()
        assert player is not None

        def left() -> None:
            if not self.sent_all:
                self.client_left = True
                player.cancel()

        conn = self._outlet.conn
        watcher: asyncio.Task[None] | None = None
        if conn is not None:
            # Told by the connection itself: no task to make for each timed response (400
            # streams started at once would each wait for the ones before to make theirs).
            conn.when_lost(left)
        else:
            receive = self.receive

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                left()

            watcher = asyncio.create_task(watch_disconnect())
        try:
            return await play()
        except asyncio.CancelledError:
            drain = self._drain
            if not self.client_left:
                if drain is not None:
                    drain.stop()
                raise
            player.uncancel()
            if drain is not None:
                await drain.read_on()
            return True
        finally:
            if watcher is not None:
                watcher.cancel()
            elif conn is not None:
                conn.when_lost(None)


def _whole(sizes: Sequence[int], room: int) -> int:
    """How many of the parts of ``sizes`` bytes fit whole in ``room`` bytes."""
    count = 0
    for size in sizes:
        if size > room:
            break
        room -= size
        count += 1
    return count
