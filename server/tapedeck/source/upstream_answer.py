"""What goes upstream and what comes back: the request as forwarded (:class:`Forward`) and
the upstream's answer to it, read as it arrives (:class:`UpstreamResponse`, a live source).

A streamed answer is decoded event by event as the bytes arrive; each event becomes a
:class:`~tapedeck.pipeline.Step` at its arrival time. A JSON answer is read whole before
anything is passed on. A platform's answer (``upstream_form``) is read back through its
:class:`~tapedeck.source.platform_form.Answer` as the first-party one. The client that sends
the request is :class:`tapedeck.source.upstream.Upstream`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..pipeline import Ending, Head, Plan, Step
from ..wire.headers import response_headers
from ..wire.sse import encode_event
from ..wire.sse_decode import SSEDecoder, json_or_text
from .batches import rewrite_results_url
from .platform_form import Answer, PlatformForward

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Forward:
    """The request to send upstream, as the client sent it."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    #: When tapedeck received it (``perf_counter``): step times count from here.
    started: float
    #: Where the client reached tapedeck, for ``results_url`` of batches (or ``None``).
    results_base: str | None = None
    #: Set when the request goes in a platform's own form (then ``path``, ``query``,
    #: ``headers`` and ``body`` are the client's, ``path`` still percent-encoded).
    platform: PlatformForward | None = None


class UpstreamResponse:
    """The upstream's answer, as a live source (:class:`~tapedeck.pipeline.LiveSource`)."""

    def __init__(
        self,
        response: httpx.Response,
        forward: Forward,
        sent_at: float,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        self.response = response
        self.forward = forward
        arrived = time.perf_counter()
        #: From the request leaving to the response headers arriving.
        self.time_to_headers_ms = (arrived - sent_at) * 1000
        #: When the headers arrived, in seconds after the request reached tapedeck.
        self.headers_at = arrived - forward.started
        self.status = response.status_code
        #: The headers as received (lower-case names).
        self.received = [(k.lower(), v) for k, v in response.headers.multi_items()]
        self._answer = forward.platform.answer() if forward.platform is not None else None
        if self._answer is not None:  # from here on, the first-party answer
            self.status, self.received = self._answer.head(self.status, self.received)
        kind = next((v for k, v in self.received if k == "content-type"), "")
        stream = kind.startswith("text/event-stream")
        self._extra = list(extra)
        self.head = Head(self.status, self._headers(stream), stream)
        self.ending = Ending.COMPLETE
        #: The JSON answer as received (before any ``results_url`` rewrite), once read.
        self.payload = b""
        self._body = b""
        #: When the body ended, in seconds after the request reached tapedeck.
        self.end_at = self.headers_at
        self._sent_at = sent_at

    @property
    def duration(self) -> float:
        """Seconds from the request going out to the end of the answer (so far)."""
        return self.forward.started + self.end_at - self._sent_at

    def _headers(self, stream: bool, length: int | None = None) -> list[tuple[bytes, bytes]]:
        received = [(k, v) for k, v in self.received if not k.startswith("x-tapedeck-")]
        return response_headers(received, stream=stream, length=length, extra=self._extra)

    async def read_whole(self) -> None:
        """Read a JSON (non-stream) answer whole."""
        self.payload = await self.response.aread()
        if self._answer is not None:
            self.payload = self._answer.whole(self.payload)
        base = self.forward.results_base
        self._body = rewrite_results_url(self.payload, base) if base else self.payload
        self.head = Head(self.status, self._headers(False, len(self._body)), False)
        self.end_at = time.perf_counter() - self.forward.started

    async def batches(self) -> AsyncIterator[Sequence[Step]]:
        """The events each chunk of the body completes, at their arrival time."""
        if not self.head.stream:
            yield [Step(0.0, self._body)]
            return
        if self._answer is not None:
            async for steps in self._platform_batches(self._answer):
                yield steps
            return
        import httpx

        decoder = SSEDecoder()
        started = self.forward.started
        try:
            async for chunk in self.response.aiter_bytes():
                at = time.perf_counter() - started
                steps = []
                for decoded in decoder.feed(chunk):
                    data = json_or_text(decoded.data)
                    steps.append(Step(at, encode_event(decoded.event, data), decoded.event, data))
                if steps:
                    yield steps
        except httpx.HTTPError:
            self.ending = Ending.CUT
        self.end_at = time.perf_counter() - started

    async def _platform_batches(self, answer: Answer) -> AsyncIterator[Sequence[Step]]:
        """:meth:`batches` of a platform's stream, read back by ``answer``."""
        import httpx

        started = self.forward.started
        try:
            async for chunk in self.response.aiter_bytes():
                at = time.perf_counter() - started
                steps = []
                for event, text in answer.events(chunk):
                    data = json_or_text(text)
                    steps.append(Step(at, encode_event(event, data), event, data))
                if steps:
                    yield steps
                if answer.error is not None:  # the rest cannot be read: a cut stream
                    self.ending = Ending.CUT
                    break
        except httpx.HTTPError:
            self.ending = Ending.CUT
        self.end_at = time.perf_counter() - started

    async def done(self, passed_on: bool) -> Plan | None:
        """Nothing to do: the upstream has no use for it (a recording tap has)."""
        return None

    async def aclose(self) -> None:
        await self.response.aclose()
