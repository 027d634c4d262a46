"""The ASGI response that plays a recorded response back on the wire.

Everything that can be prepared is prepared when the cassette loads (event bytes, the
whole body, the header list); here we only wait for deadlines and send. With ``instant``
timing the body goes out in one send. With any other timing a second task listens for
the client going away, so an abandoned stream stops at once instead of sleeping on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import anyio
from starlette.types import Receive, Scope, Send

from .cassette import RecordedResponse, StreamEnd
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
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class ReplayResponse:
    """Send ``response`` with ``timing``; ``started`` is when the request arrived.

    ``started`` is a :func:`time.perf_counter` reading: the event loop's own clock may be
    cached at millisecond resolution (uvloop), too coarse for event deadlines.
    """

    def __init__(
        self,
        response: RecordedResponse,
        headers: list[tuple[bytes, bytes]],
        timing: Timing,
        started: float,
    ) -> None:
        self.response = response
        self.headers = headers
        self.timing = timing
        self.started = started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.timing.waits:
            finished = await self._play(send)
        else:
            finished = True  # stays so if the client leaves first: nothing left to cut
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    scope.setdefault("state", {})["tapedeck.client_left"] = True
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                finished = await self._play(send)
                group.cancel_scope.cancel()
        if not finished:
            raise StreamCut("recorded disconnect")

    async def _wait_until(self, offset: float) -> None:
        if self.timing.waits:
            delay = self.started + offset - time.perf_counter()
            if delay > COALESCE_S:
                await anyio.sleep(delay)

    async def _play(self, send: Send) -> bool:
        """Send the response; return False if the body must be left unfinished."""
        response = self.response
        await self._wait_until(self.timing.headers_at(response))
        await send(
            {"type": "http.response.start", "status": response.status, "headers": self.headers}
        )
        events = response.events
        if events is None:
            await send({"type": "http.response.body", "body": response.payload})
            return True
        complete = response.end is StreamEnd.COMPLETE
        if not self.timing.waits:
            await send(
                {"type": "http.response.body", "body": response.payload, "more_body": not complete}
            )
            return complete
        times = self.timing.event_times(response)
        i, count = 0, len(events)
        while i < count:
            await self._wait_until(times[i])
            due = time.perf_counter() - self.started + COALESCE_S
            j = i + 1
            while j < count and times[j] <= due:
                j += 1
            body = events[i].encoded if j == i + 1 else b"".join(e.encoded for e in events[i:j])
            await send({"type": "http.response.body", "body": body, "more_body": True})
            i = j
        await self._wait_until(self.timing.end_at(response, times[-1] if times else 0.0))
        if complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return complete
