"""Reading a live source on after its client left, so that a recording does not depend on the
client reading to the end.

Some clients hang up as soon as they have what they need: LiteLLM closes the connection once
it has the stop reason (``message_delta``), before the upstream's ``message_stop``. In the
modes that record, the writer then stops sending at once but keeps reading the source — for
at most :attr:`Drain.seconds`, and no more than :data:`STOP_GRACE_S` once the server is
stopping — and tells it it was read whole, as if the client had stayed: the recording tap
then hands the upstream's answer to the recorder, which judges it as any other.

For that, each await on the source (opening it, its next batch, telling it it is over) runs
in a task of its own while the writer waits on it (:meth:`Drain.guard`): the client leaving
cancels the writer, never the read in progress, and :meth:`Drain.read_on` takes it over.

Once the server is told to stop, an answer being recorded — its client still reading or
gone — gets :attr:`Drain.stop_seconds` more (``record_shutdown_timeout``) to finish and be
written; then it is abandoned (:attr:`Drain.gave_up` is :data:`STOPPED`): :meth:`Drain.bounded`
cancels the writer of a client still there, and the caller cuts or answers it. uvicorn's own
graceful shutdown waits a little longer than that (:mod:`tapedeck.server.runner`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..pipeline import LiveSource, Plan, Step

T = TypeVar("T")
#: Once the server is stopping, how much longer a source is read on, unless the setting
#: record_shutdown_timeout says otherwise.
STOP_GRACE_S = 10.0
#: Why a source was not read to its end (:attr:`Drain.gave_up`).
TIMED_OUT = "timed out"
STOPPED = "server stopped"


class Stopping(asyncio.Event):
    """Set once the server is stopping (on its event loop), remembering when: the bound of
    an answer being recorded counts from the stop, however late its reading began."""

    at: float | None = None

    def set(self) -> None:
        if self.at is None:
            self.at = asyncio.get_running_loop().time()
        super().set()


def stop_left(stopping: asyncio.Event, seconds: float) -> float:
    """Seconds left of ``seconds`` after ``stopping`` was set (all of them if it does not
    say when)."""
    at = stopping.at if isinstance(stopping, Stopping) else None
    if at is None:
        return seconds
    return max(seconds - (asyncio.get_running_loop().time() - at), 0.0)


class Drain:
    """A live source's reading, kept going for ``seconds`` once its client has left, and
    for no more than ``stop_seconds`` after ``stopping`` is set."""

    __slots__ = (
        "batches",
        "gave_up",
        "pending",
        "reading_on",
        "seconds",
        "source",
        "stop_seconds",
        "stopping",
        "told",
    )

    def __init__(
        self,
        seconds: float,
        stopping: asyncio.Event | None = None,
        stop_seconds: float = STOP_GRACE_S,
    ) -> None:
        self.seconds = seconds
        self.stopping = stopping
        self.stop_seconds = stop_seconds
        #: The client left: :meth:`read_on` has the source (and keeps its own bounds).
        self.reading_on = False
        #: The source once open, and its batches once asked for.
        self.source: LiveSource | None = None
        self.batches: AsyncIterator[Sequence[Step]] | None = None
        #: The await on the source in progress (or the last one).
        self.pending: asyncio.Future[Any] | None = None
        #: The source has been told it is over (:meth:`done`).
        self.told = False
        #: Why the source was not read to its end after the client left (:data:`TIMED_OUT`,
        #: :data:`STOPPED`; ``""``: it was, or the client stayed). Then it was told nothing,
        #: and nothing was recorded.
        self.gave_up = ""

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work`` in a task of its own, which the caller's cancellation leaves
        running (for :meth:`read_on`)."""
        task = asyncio.ensure_future(work)
        self.pending = task
        return await asyncio.shield(task)

    async def open(
        self, open_source: Callable[[], Awaitable[LiveSource | Plan]]
    ) -> LiveSource | Plan:
        """Open the source (:meth:`guard` ed), noting it if it is a live one."""

        async def opening() -> LiveSource | Plan:
            opened = await open_source()
            if not isinstance(opened, Plan):
                self.source = opened
            return opened

        return await self.guard(opening())

    async def done(self, source: LiveSource, passed_on: bool) -> Plan | None:
        """Tell ``source`` it is over (:meth:`guard` ed, and only once)."""
        self.told = True
        return await self.guard(source.done(passed_on))

    def stop(self) -> None:
        """Cancel the await in progress: the response is being torn down."""
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()

    async def bounded(self, work: Awaitable[None]) -> None:
        """Await ``work`` (the writer sending the source); once the server is stopping and
        :attr:`stop_seconds` have passed, cancel it — unless the source is already over (its
        recording being written) or its client left (:meth:`read_on` has its own bound) —
        and set :attr:`gave_up` to :data:`STOPPED`. The source's request is closed by the
        writer's cancellation (:meth:`stop`)."""
        stopping = self.stopping
        if stopping is None:
            await work
            return
        task = asyncio.current_task()
        assert task is not None
        fired = False

        async def stop_timer() -> None:
            nonlocal fired
            await stopping.wait()
            await asyncio.sleep(stop_left(stopping, self.stop_seconds))
            if not self.told and not self.reading_on:
                fired = True
                task.cancel()

        timer = asyncio.ensure_future(stop_timer())
        try:
            await work
        except asyncio.CancelledError:
            if not fired:
                raise
            task.uncancel()
            self.gave_up = STOPPED
        finally:
            timer.cancel()

    async def read_on(self) -> None:
        """After the client left: finish the await in progress, read the rest of the source
        and tell it it was passed on whole; if it has not ended in time, stop reading it and
        tell it nothing (:attr:`gave_up`)."""
        self.reading_on = True
        if self.told:  # it is over already: only wait for the source to finish with it
            if self.pending is not None:
                await self.pending
            return
        reading = asyncio.ensure_future(self._read())
        try:
            self.gave_up = await self._wait(reading)
        finally:
            if not reading.done():
                reading.cancel()
                await asyncio.wait({reading})
        source = reading.result() if not self.gave_up else None
        if source is not None:
            await self.done(source, True)

    async def _read(self) -> LiveSource | None:
        """Finish the await in progress and read the source to its end; the source, or
        ``None`` if there is none (it never opened, or answered with a plan)."""
        if self.pending is not None:
            await self.pending
        source = self.source
        if source is not None:
            batches = self.batches if self.batches is not None else source.batches()
            async for _ in batches:
                pass
        return source

    async def _wait(self, reading: asyncio.Future[Any]) -> str:
        """Wait for ``reading`` as long as it may take; ``""`` if it ended, else why not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        waiting: set[asyncio.Future[Any]] = {reading}
        stop = None
        if self.stopping is not None:
            stop = asyncio.ensure_future(self.stopping.wait())
            waiting.add(stop)
        try:
            first = asyncio.FIRST_COMPLETED
            done, _ = await asyncio.wait(waiting, timeout=self.seconds, return_when=first)
            if reading in done:
                return ""
            if stop is None or stop not in done:
                return TIMED_OUT
            assert self.stopping is not None
            left = min(deadline - loop.time(), stop_left(self.stopping, self.stop_seconds))
            done, _ = await asyncio.wait({reading}, timeout=max(left, 0.0))
            if done:
                return ""
            return TIMED_OUT if loop.time() >= deadline else STOPPED
        finally:
            if stop is not None:
                stop.cancel()
