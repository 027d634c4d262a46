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

The sending itself — deadlines, idle pings, the byte limit, the client's buffer — is
:class:`~tapedeck.wire.pacing.Pacer`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..errors import StreamCut
from ..pipeline import Ending, LiveShaping, LiveSource, Plan, Step
from .drain import Drain
from .flow import ByteMeter
from .pacing import Pacer
from .sse import PING

#: Events after which the API sends nothing more: once one is out, a client that leaves
#: has all it wanted (the SDK closes the connection after an ``error`` event).
LAST_EVENTS = frozenset({"message_stop", "error"})

Opener = Callable[[], Awaitable["LiveSource | Plan"]]


class Writer(Pacer):
    """Sends one response to an ASGI ``send``: a plan, or a live source as it arrives,
    stopping when the client leaves. ``started`` (a :func:`time.perf_counter` reading) is
    when the request arrived."""

    __slots__ = ()

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
