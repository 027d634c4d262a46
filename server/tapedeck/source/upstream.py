"""The upstream source: a request forwarded to the real API, its answer read as it arrives.

One pooled ``httpx.AsyncClient``, made when the server starts in a mode that may go
upstream (the first recording of a run must not pay for it inside its timed window; in
``--mode none`` neither it nor httpx is loaded unless a request goes upstream after all),
sends each request. Its transport can be
replaced (``httpx.MockTransport`` in tests). A streamed answer is decoded event by event as
the bytes arrive; each event becomes a :class:`~tapedeck.pipeline.Step` at its arrival
time. A JSON answer is read whole before anything is passed on.

A request may go upstream in a cloud platform's own form (``upstream_form``): its
:class:`Forward` then carries a :class:`PlatformForward`, which sets the platform's
credential on the request as sent (re-signing it, for SigV4) and gives an
:class:`Answer` that reads the platform's answer back as the first-party one — what the
recording tap and the rest of tapedeck see. :mod:`tapedeck.platforms` implements both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UpstreamError
from ..pipeline import Ending, Head, Plan, Step
from ..wire.drain import Stopping
from ..wire.headers import HOP_BY_HOP, response_headers
from ..wire.sse import encode_event
from ..wire.sse_decode import SSEDecoder, json_or_text
from .batches import rewrite_results_url
from .platform_form import Answer, PlatformForward, UpstreamForm
from .upstream_failures import unreachable

if TYPE_CHECKING:
    import httpx

#: Request headers not forwarded: hop-by-hop, recomputed by the HTTP client, or tapedeck's.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "accept-encoding"}
_AUTH = ("authorization", "x-api-key")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """Where the upstream is and how long to wait for it."""

    base_url: str = "https://api.anthropic.com"
    #: When set, requests carry this key instead of the client's own auth headers.
    api_key: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    #: When recording: seconds the answer is read on after the client left
    #: (``record_drain_timeout``); a request not recorded stops at once.
    drain_timeout: float = 60.0
    #: Once the server is stopping: seconds an answer being recorded may still take
    #: (``record_shutdown_timeout``).
    stop_timeout: float = 10.0
    #: The form platform clients' requests go upstream in (``upstream_form``).
    form: UpstreamForm = UpstreamForm.AUTO


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


class Upstream:
    """The shared client to the upstream API. :meth:`start` it before use."""

    def __init__(
        self, config: UpstreamConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        #: Set once the server is stopping: answers read on after their client left stop
        #: soon (:mod:`tapedeck.wire.drain`).
        self.stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, connect: bool = True) -> None:
        """Make the pooled client (at server start-up, on the server's event loop); with
        ``connect`` false (a mode that never goes upstream) it is made on first use."""
        self._loop = asyncio.get_running_loop()
        self.stopping = Stopping()
        if connect:
            self._connect()

    def _connect(self) -> httpx.AsyncClient:
        import httpx  # not at import: a server that only replays never needs it

        if self._client is None:
            c = self.config
            self._client = httpx.AsyncClient(
                base_url=c.base_url.rstrip("/"),
                timeout=httpx.Timeout(c.read_timeout, connect=c.connect_timeout),
                follow_redirects=False,
                transport=self._transport,
            )
        return self._client

    def stop(self) -> None:
        """Tell answers being read on after their client left that the server is stopping
        (safe from any thread)."""
        loop, stopping = self._loop, self.stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def forward_headers(
        self, headers: Iterable[tuple[str, str]], own_key: bool = True
    ) -> list[tuple[str, str]]:
        """The client's headers as sent upstream (with ``own_key``, the configured key in
        place of the client's)."""
        key = self.config.api_key if own_key else None
        out = [
            (k, v)
            for k, v in ((k.lower(), v) for k, v in headers)
            if k not in _NOT_FORWARDED
            and not k.startswith("x-tapedeck-")
            and not (key and k in _AUTH)
        ]
        if key:
            out.append(("x-api-key", key))
        out.append(("accept-encoding", "identity"))
        return out

    async def open(self, forward: Forward, extra: Sequence[tuple[str, str]]) -> UpstreamResponse:
        """Send the request; return the answer with its body still to come (a stream) or
        read whole (JSON). ``extra`` headers are added to what the client gets. Raise
        :class:`UpstreamError` if the upstream cannot be reached or breaks off early."""
        import httpx

        if self._loop is None:
            raise RuntimeError("Upstream.start() was not called (the app's lifespan starts it)")
        client = self._client or self._connect()
        q = forward.query
        url = httpx.URL(forward.path, query=q.encode("latin-1")) if q else httpx.URL(forward.path)
        sent = _Sent(time.perf_counter())
        platform = forward.platform
        request = client.build_request(
            forward.method,
            url,
            headers=self.forward_headers(forward.headers, own_key=platform is None),
            content=forward.body,
            extensions={"trace": sent.trace},
        )
        if platform is not None:  # its credential is for the request as it will be sent
            sent_headers = [(k, v) for k, v in request.headers.items() if k != "connection"]
            method, target = forward.method, str(request.url)
            signed = await platform.credential(method, target, sent_headers, forward.body)
            request.headers = httpx.Headers(signed)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        answer = UpstreamResponse(response, forward, sent.at, extra)
        if not answer.head.stream:
            try:
                await answer.read_whole()
            except httpx.HTTPError as exc:
                await answer.aclose()
                raise self._unreachable(exc) from None
        return answer

    def _unreachable(self, exc: httpx.HTTPError) -> UpstreamError:
        c = self.config
        return unreachable(c.base_url, exc, c.connect_timeout, c.read_timeout)


class _Sent:
    """When the request really went out: the HTTP client reports the moment it starts
    writing the request headers (after any connection set-up)."""

    def __init__(self, at: float) -> None:
        self.at = at

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_headers.started"):
            self.at = time.perf_counter()


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
