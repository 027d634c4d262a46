"""The ASGI response that plays a recorded response back on the wire.

Everything that can be prepared is prepared when the cassette loads (event bytes, the
whole body, the header list); here we only wait for deadlines and send. With ``instant``
timing the body goes out in one send. With any other timing a second task listens for
the client going away, so an abandoned stream stops at once instead of sleeping on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from starlette.types import Receive, Scope, Send

from .cassette import RecordedResponse, StreamEnd
from .faults import Fault, FaultKind
from .plan import Ending, Plan, cached_plan
from .shaping import shape
from .timing import Timing

#: Recorded response headers never replayed: hop-by-hop headers, and those describing a
#: body encoding that replay does not reproduce. ``date`` is the server's own, fresh.
DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        "content-length",
        "content-encoding",
        "date",
    }
)

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

#: Events due within this much of the next send go out with it: waking up for each
#: would only add the event loop's ~1 ms timer granularity as lateness.
COALESCE_S = 0.0005


class StreamCut(Exception):
    """Raised after a partial body to make the server drop the connection on purpose."""


def wire_headers(
    response: RecordedResponse, extra: Iterable[tuple[str, str]]
) -> list[tuple[bytes, bytes]]:
    """The header list to send for ``response``: recorded headers, defaults, then ``extra``."""
    headers = [(k, v) for k, v in response.headers if k not in DROPPED_HEADERS]
    names = {k for k, _ in headers}
    if "content-type" not in names:
        if response.is_stream:
            headers.append(("content-type", SSE_CONTENT_TYPE))
        elif response.text is None and response.payload:
            headers.append(("content-type", JSON_CONTENT_TYPE))
    if response.is_stream and "cache-control" not in names:
        headers.append(("cache-control", "no-cache"))
    if not response.is_stream:
        headers.append(("content-length", str(len(response.payload))))
    headers.extend(extra)
    return [(k.encode("latin-1"), header_value(v)) for k, v in headers]


def header_value(text: str) -> bytes:
    """A header value as bytes; characters HTTP headers cannot carry become ``\\uXXXX``."""
    return text.encode("latin-1", "backslashreplace")


async def play_until_client_leaves(
    scope: Scope,
    receive: Receive,
    play: Callable[[], Awaitable[bool]],
    sent_all: Callable[[], bool],
) -> bool:
    """Run ``play()``, cancelling it if the client disconnects first.

    Returns what ``play()`` returned (False: cut the connection), or True if the client
    left, since then nobody is left to cut off. ``sent_all()`` says whether the response
    is complete: the server reports a disconnect after that too, which is no departure.
    """
    # Plain asyncio rather than a task group: this runs once per timed response, and a
    # watcher task plus a cancel is all it takes.
    player = asyncio.current_task()
    assert player is not None
    left = False

    async def watch_disconnect() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        if not sent_all():
            left = True
            scope.setdefault("state", {})["tapedeck.client_left"] = True
            player.cancel()

    watcher = asyncio.create_task(watch_disconnect())
    try:
        return await play()
    except asyncio.CancelledError:
        if not left:
            raise
        player.uncancel()
        return True
    finally:
        watcher.cancel()


class ReplayResponse:
    """Send ``response`` with ``timing``, broken by ``faults``; ``started`` is when the
    request arrived.

    ``started`` is a :func:`time.perf_counter` reading: the event loop's own clock may be
    cached at millisecond resolution (uvloop), too coarse for event deadlines.
    """

    def __init__(
        self,
        response: RecordedResponse,
        headers: list[tuple[bytes, bytes]],
        timing: Timing,
        started: float,
        faults: Sequence[Fault] = (),
    ) -> None:
        self.response = response
        self.headers = headers
        self.timing = timing
        self.started = started
        self.faults = faults
        self.sent_all = False
        #: The status once the headers have gone out (0 before), for the request log.
        self.status = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.timing.waits and not self.faults:
            finished = await self._send_at_once(send)
        else:
            finished = await play_until_client_leaves(
                scope, receive, lambda: self._play(send), lambda: self.sent_all
            )
        if not finished:
            raise StreamCut("recorded disconnect")

    async def _start(self, send: Send) -> None:
        self.status = self.response.status
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})

    async def _send_at_once(self, send: Send) -> bool:
        """The whole response in one write: ``instant`` timing and no faults."""
        response = self.response
        complete = response.end is StreamEnd.COMPLETE or not response.is_stream
        await self._start(send)
        await send(
            {"type": "http.response.body", "body": response.payload, "more_body": not complete}
        )
        return complete

    async def _wait_until(self, offset: float) -> None:
        delay = self.started + offset - time.perf_counter()
        if delay > COALESCE_S:
            await asyncio.sleep(delay)

    async def _play(self, send: Send) -> bool:
        """Send the response; return False if the body must be left unfinished."""
        response = self.response
        if response.is_stream:
            plan = cached_plan(response, self.timing)
            return await self._send_plan(send, shape(plan, self.faults) if self.faults else plan)
        latency = sum(f.ms for f in self.faults if f.kind is FaultKind.LATENCY) / 1000
        await self._wait_until(self.timing.headers_at(response) + latency)
        await self._start(send)
        self.sent_all = True
        await send({"type": "http.response.body", "body": response.payload})
        return True

    async def _send_plan(self, send: Send, plan: Plan) -> bool:
        await self._wait_until(plan.headers_at)
        await self._start(send)
        steps = plan.steps
        i, count = 0, len(steps)
        while i < count:
            await self._wait_until(steps[i].at)
            due = time.perf_counter() - self.started + COALESCE_S
            j = i + 1
            while j < count and steps[j].at <= due:
                j += 1
            body = steps[i].encoded if j == i + 1 else b"".join(s.encoded for s in steps[i:j])
            await send({"type": "http.response.body", "body": body, "more_body": True})
            i = j
        await self._wait_until(plan.end_at)
        if plan.ending is Ending.CUT:
            return False
        self.sent_all = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
