"""The upstream source: a request forwarded to the real API, its answer read as it arrives.

One pooled ``httpx.AsyncClient``, made when the server starts in a mode that may go
upstream (the first recording of a run must not pay for it inside its timed window; in
``--mode none`` neither it nor httpx is loaded unless a request goes upstream after all),
sends each request. Its transport can be
replaced (``httpx.MockTransport`` in tests). The request as forwarded and the answer read
as it arrives are in :mod:`.upstream_answer` (imported from here as before).

A request may go upstream in a cloud platform's own form (``upstream_form``): its
:class:`Forward` then carries a :class:`~tapedeck.source.platform_form.PlatformForward`,
which sets the platform's credential on the request as sent (re-signing it, for SigV4) and
gives an :class:`~tapedeck.source.platform_form.Answer` that reads the platform's answer
back as the first-party one — what the recording tap and the rest of tapedeck see.
:mod:`tapedeck.platforms` implements both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UpstreamError
from ..wire.drain import Stopping
from ..wire.headers import HOP_BY_HOP
from .platform_form import UpstreamForm
from .upstream_answer import Forward, UpstreamResponse
from .upstream_failures import unreachable

if TYPE_CHECKING:
    import httpx

__all__ = ["Forward", "Upstream", "UpstreamConfig", "UpstreamResponse"]

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
