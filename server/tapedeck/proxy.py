"""Proxying to the real API: forward a request, stream the answer through, record it.

Each upstream SSE event is decoded as it arrives, passed to the client at once (through
fault shaping, if any) and kept, with its arrival time, for the recording. The recording
is handed over only when the exchange is over and the client saw all of it: if the client
goes away, the upstream request is cancelled and nothing is written.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx
from starlette.types import Receive, Scope, Send

from .api_errors import error_response
from .batches import rewrite_results_url
from .cassette import RecordedEvent, RecordedResponse, StreamEnd
from .faults import Fault, FaultKind
from .logs import note
from .plan import Ending, Step
from .redact import redact_headers, redact_value
from .responses import DROPPED_HEADERS, StreamCut, header_value, play_until_client_leaves
from .shaping import PING, Shaper
from .sse import encode_event
from .sse_decode import SSEDecoder

#: Request headers not forwarded: hop-by-hop, recomputed by the HTTP client, or tapedeck's.
_NOT_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "accept-encoding",
    }
)

Recorder = Callable[[RecordedResponse], Awaitable[None]]
#: Events after which the API sends nothing more.
_LAST_EVENTS = frozenset({"message_stop", "error"})


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer; the message names it."""


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    base_url: str = "https://api.anthropic.com"
    #: When set, requests carry this key instead of the client's own auth headers.
    api_key: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 600.0


class Upstream:
    """One pooled HTTP/1.1 client to the upstream API, shared by all requests."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            c = self.config
            self._client = httpx.AsyncClient(
                base_url=c.base_url.rstrip("/"),
                timeout=httpx.Timeout(c.read_timeout, connect=c.connect_timeout),
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def forward_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The client's headers as sent upstream."""
        auth = ("authorization", "x-api-key")
        out = [
            (k, v)
            for k, v in ((k.lower(), v) for k, v in headers)
            if k not in _NOT_FORWARDED
            and not k.startswith("x-tapedeck-")
            and not (self.config.api_key and k in auth)
        ]
        if self.config.api_key:
            out.append(("x-api-key", self.config.api_key))
        out.append(("accept-encoding", "identity"))
        return out

    async def open(
        self, method: str, path: str, query: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> httpx.Response:
        """Send the request; return the response with its body still unread."""
        url = httpx.URL(path, query=query.encode("latin-1")) if query else httpx.URL(path)
        request = self.client.build_request(
            method, url, headers=self.forward_headers(headers), content=body
        )
        try:
            return await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise UpstreamError(f"upstream {self.config.base_url} unreachable: {reason}") from None


def response_headers(
    upstream: httpx.Response, secret: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """The upstream's response headers worth keeping: no hop-by-hop, no secrets."""
    pairs = [(k.lower(), v) for k, v in upstream.headers.multi_items()]
    kept = [
        (k, v) for k, v in pairs if k not in DROPPED_HEADERS and not k.startswith("x-tapedeck-")
    ]
    return redact_headers(kept, secret)


def _data(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


class ProxyResponse:
    """Forwards a request upstream and streams the answer back, shaped by ``faults``,
    handing the recording to ``record`` once the exchange is over.

    Everything from sending the request upstream on runs while watching for the client to
    go away: when it does, the upstream request is cancelled at once, and nothing is
    recorded.
    """

    def __init__(
        self,
        upstream: Upstream,
        request: tuple[str, str, str, Sequence[tuple[str, str]], bytes],
        *,
        headers: Sequence[tuple[str, str]],
        secret_headers: frozenset[str],
        faults: Sequence[Fault] = (),
        record: Recorder | None = None,
        results_url_base: str | None = None,
    ) -> None:
        self.upstream = upstream
        self.request = request
        self.extra_headers = headers
        self.secret_headers = secret_headers
        self.faults = faults
        self.record = record
        self.results_url_base = results_url_base
        self.sent_at = self.headers_at = self.last_send = 0.0
        #: The status once the headers have gone out (0 before), for the request log.
        self.status = 0
        #: Set once the client has everything it will get; a departure after that is none.
        self.delivered = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        finished = await play_until_client_leaves(
            scope, receive, lambda: self._exchange(scope, receive, send), lambda: self.delivered
        )
        if not finished:
            raise StreamCut("upstream disconnect")

    async def _exchange(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Forward, answer and record; return False if the client must be cut off."""
        self.sent_at = time.perf_counter()
        try:
            response = await self.upstream.open(*self.request)
        except UpstreamError as exc:
            note(scope, f"502: {exc}")
            self.delivered = True
            self.status = 502
            await error_response(502, f"tapedeck: {exc}", "api_error")(scope, receive, send)
            return True
        self.headers_at = time.perf_counter()
        try:
            latency = sum(f.ms for f in self.faults if f.kind is FaultKind.LATENCY) / 1000
            if latency:
                await asyncio.sleep(latency)
            recorded = response_headers(response, self.secret_headers)
            passed = [(k.lower(), v) for k, v in response.headers.multi_items()]
            headers = [
                (k.encode("latin-1"), header_value(v))
                for k, v in [*passed, *self.extra_headers]
                if k not in DROPPED_HEADERS
            ]
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return await self._stream(response, headers, recorded, send)
            return await self._whole(response, headers, recorded, send)
        finally:
            await response.aclose()

    @property
    def _time_to_headers_ms(self) -> float:
        return (self.headers_at - self.sent_at) * 1000

    async def _whole(
        self,
        response: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        recorded: tuple[tuple[str, str], ...],
        send: Send,
    ) -> bool:
        try:
            payload = await response.aread()
        except httpx.HTTPError:
            return False
        self.delivered = True
        if self.record is not None:  # before answering: the next request may replay it
            text = payload.decode("utf-8", errors="replace")
            data = _data(text) if text.strip() else None
            is_json = data is not None and not isinstance(data, str)
            await self.record(
                RecordedResponse(
                    response.status_code,
                    recorded,
                    self._time_to_headers_ms,
                    body=redact_value(data) if is_json else None,
                    text=None if is_json or not text else redact_value(text),
                )
            )
        if self.results_url_base is not None:
            payload = rewrite_results_url(payload, self.results_url_base)
        headers = [*headers, (b"content-length", str(len(payload)).encode())]
        self.status = response.status_code
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        self.delivered = True
        await send({"type": "http.response.body", "body": payload})
        return True

    async def _send(self, send: Send, body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self.last_send = time.perf_counter()

    async def _ping_when_idle(self, send: Send, interval: float) -> None:
        while True:
            idle = time.perf_counter() - self.last_send
            if idle >= interval:
                await self._send(send, PING)
            else:
                await asyncio.sleep(interval - idle)

    async def _stream(
        self,
        response: httpx.Response,
        headers: list[tuple[bytes, bytes]],
        recorded: tuple[tuple[str, str], ...],
        send: Send,
    ) -> bool:
        status = self.status = response.status_code
        await send({"type": "http.response.start", "status": status, "headers": headers})
        self.last_send = time.perf_counter()
        shaper = Shaper(self.faults) if self.faults else None
        pingers = [
            asyncio.create_task(self._ping_when_idle(send, f.interval_ms / 1000))
            for f in self.faults
            if f.kind is FaultKind.PING and f.interval_ms
        ]
        events: list[RecordedEvent] = []
        end = StreamEnd.COMPLETE
        decoder = SSEDecoder()
        try:
            async for chunk in response.aiter_bytes():
                now = time.perf_counter()
                for decoded in decoder.feed(chunk):
                    data = _data(decoded.data)
                    at_ms = (now - self.headers_at) * 1000
                    event = RecordedEvent(
                        decoded.event, data, at_ms, encode_event(decoded.event, data)
                    )
                    events.append(event)
                    await self._forward(send, shaper, event, now)
                    if decoded.event in _LAST_EVENTS and shaper is None:
                        # The client has it all: leaving now (as the SDK does on an error
                        # event) no longer cancels the recording of what is left.
                        self.delivered = True
                if shaper is not None and shaper.ending is not None:
                    break
        except httpx.HTTPError:
            end = StreamEnd.DISCONNECT
        finally:
            for pinger in pingers:
                pinger.cancel()
        end_at_ms = (time.perf_counter() - self.headers_at) * 1000
        self.delivered = True
        if shaper is not None and shaper.ending is None:
            tail, _ = shaper.finish(0.0)
            for step in tail:
                await self._send(send, step.encoded)
        if shaper is not None and shaper.ending is not None:
            # A fault ended the stream early: what the client saw is not a recording.
            if shaper.ending is Ending.CUT:
                return False
            self.delivered = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        if self.record is not None:
            await self.record(
                RecordedResponse(
                    status,
                    recorded,
                    self._time_to_headers_ms,
                    events=tuple(
                        RecordedEvent(e.event, redact_value(e.data), e.at_ms, b"") for e in events
                    ),
                    end=end,
                    end_at_ms=end_at_ms,
                )
            )
        if end is StreamEnd.DISCONNECT:
            return False
        self.delivered = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    async def _forward(
        self, send: Send, shaper: Shaper | None, event: RecordedEvent, now: float
    ) -> None:
        if shaper is None:
            await self._send(send, event.encoded)
            return
        for step in shaper.feed(Step(now, event.encoded, event.event, event.data)):
            delay = step.at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._send(send, step.encoded)
