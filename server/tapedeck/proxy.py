"""Proxying to the real API: forward a request, stream the answer through, record it.

Each upstream SSE event is decoded as it arrives, passed to the client at once (through
fault shaping, if any) and kept, with its arrival time, for the recording. The recording
is handed over only when the exchange is over and the client saw all of it: if the client
goes away, the upstream request is cancelled and nothing is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from .batches import rewrite_results_url
from .cassette import RecordedEvent, RecordedResponse, StreamEnd
from .faults import Fault, FaultKind
from .plan import Ending, Step
from .redact import redact_headers, redact_value
from .responses import DROPPED_HEADERS, StreamCut
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
    """Streams an upstream response to the client, shaped by ``faults``, and records it."""

    def __init__(
        self,
        upstream: httpx.Response,
        *,
        sent_at: float,
        headers_at: float,
        headers: list[tuple[bytes, bytes]],
        recorded_headers: tuple[tuple[str, str], ...],
        faults: Sequence[Fault] = (),
        record: Recorder | None = None,
        results_url_base: str | None = None,
    ) -> None:
        self.results_url_base = results_url_base
        self.upstream = upstream
        self.sent_at = sent_at
        self.headers_at = headers_at
        self.headers = headers
        self.recorded_headers = recorded_headers
        self.faults = faults
        self.record = record
        self.last_send = headers_at

    @property
    def _time_to_headers_ms(self) -> float:
        return (self.headers_at - self.sent_at) * 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            latency = sum(f.ms for f in self.faults if f.kind is FaultKind.LATENCY) / 1000
            if latency:
                await anyio.sleep(latency)
            content_type = self.upstream.headers.get("content-type", "")
            if content_type.startswith("text/event-stream"):
                cut = await self._stream(scope, receive, send)
                if cut:
                    raise StreamCut("upstream disconnect")
            else:
                await self._whole(send)
        finally:
            await self.upstream.aclose()

    async def _whole(self, send: Send) -> None:
        try:
            payload = await self.upstream.aread()
        except httpx.HTTPError:
            raise StreamCut("upstream disconnect") from None
        status = self.upstream.status_code
        recorded_payload = payload
        if self.results_url_base is not None:
            payload = rewrite_results_url(payload, self.results_url_base)
        headers = [*self.headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        if self.record is not None:
            text = recorded_payload.decode("utf-8", errors="replace")
            data = _data(text) if text.strip() else None
            is_json = data is not None and not isinstance(data, str)
            await self.record(
                RecordedResponse(
                    status,
                    self.recorded_headers,
                    self._time_to_headers_ms,
                    body=redact_value(data) if is_json else None,
                    text=None if is_json or not text else redact_value(text),
                )
            )

    async def _send(self, send: Send, body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self.last_send = time.perf_counter()

    async def _ping_when_idle(self, send: Send, interval: float) -> None:
        while True:
            idle = time.perf_counter() - self.last_send
            if idle >= interval:
                await self._send(send, PING)
            else:
                await anyio.sleep(interval - idle)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Pass the event stream through; return True if the client must be cut off."""
        await send(
            {
                "type": "http.response.start",
                "status": self.upstream.status_code,
                "headers": self.headers,
            }
        )
        self.last_send = time.perf_counter()
        shaper = Shaper(self.faults) if self.faults else None
        events: list[RecordedEvent] = []
        end = StreamEnd.COMPLETE
        client_left = False
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                nonlocal client_left
                while (await receive())["type"] != "http.disconnect":
                    pass
                client_left = True
                scope.setdefault("state", {})["tapedeck.client_left"] = True
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            for fault in self.faults:
                if fault.kind is FaultKind.PING and fault.interval_ms:
                    group.start_soon(self._ping_when_idle, send, fault.interval_ms / 1000)
            decoder = SSEDecoder()
            try:
                async for chunk in self.upstream.aiter_bytes():
                    now = time.perf_counter()
                    for decoded in decoder.feed(chunk):
                        data = _data(decoded.data)
                        at_ms = (now - self.headers_at) * 1000
                        event = RecordedEvent(
                            decoded.event, data, at_ms, encode_event(decoded.event, data)
                        )
                        events.append(event)
                        await self._forward(send, shaper, event, now)
                    if shaper is not None and shaper.ending is not None:
                        break
            except httpx.HTTPError:
                end = StreamEnd.DISCONNECT
            end_at_ms = (time.perf_counter() - self.headers_at) * 1000
            group.cancel_scope.cancel()
        if client_left:
            return False
        if shaper is not None and shaper.ending is None:
            tail, _ = shaper.finish(0.0)
            for step in tail:
                await self._send(send, step.encoded)
        if shaper is not None and shaper.ending is not None:
            # A fault ended the stream early: what the client saw is not a recording.
            if shaper.ending is Ending.CUT:
                return True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return False
        if self.record is not None:
            await self.record(
                RecordedResponse(
                    self.upstream.status_code,
                    self.recorded_headers,
                    self._time_to_headers_ms,
                    events=tuple(
                        RecordedEvent(e.event, redact_value(e.data), e.at_ms, b"") for e in events
                    ),
                    end=end,
                    end_at_ms=end_at_ms,
                )
            )
        if end is StreamEnd.DISCONNECT:
            return True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return False

    async def _forward(
        self, send: Send, shaper: Shaper | None, event: RecordedEvent, now: float
    ) -> None:
        if shaper is None:
            await self._send(send, event.encoded)
            return
        for step in shaper.feed(Step(now, event.encoded, event.event, event.data)):
            delay = step.at - time.perf_counter()
            if delay > 0:
                await anyio.sleep(delay)
            await self._send(send, step.encoded)
