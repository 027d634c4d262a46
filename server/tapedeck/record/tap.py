"""The recording tap: keeps what a live source sent, before any fault touches it.

It sits between the upstream and the shaper, so a recording holds the API's answer as it
arrived — each event with its arrival time — whatever faults the client saw. It hands the
recording over when the writer says the exchange is over: before the last bytes go out
(so the next request can replay it), and only if the client was given all the source sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..cassette.model import RecordedEvent, RecordedResponse, StreamEnd
from ..pipeline import Ending, Head, Step
from ..source.upstream import UpstreamResponse
from ..wire.headers import DROPPED_HEADERS
from ..wire.sse_decode import json_or_text
from .redact import redact_headers, redact_value

Save = Callable[[RecordedResponse], Awaitable[None]]


class Tap:
    """A live source (:class:`~tapedeck.pipeline.LiveSource`) that records what it passes."""

    def __init__(self, source: UpstreamResponse, save: Save, secret_headers: frozenset[str]):
        self.source = source
        self.save = save
        self.secret_headers = secret_headers
        self._steps: list[Step] = []

    @property
    def head(self) -> Head:
        return self.source.head

    @property
    def ending(self) -> Ending:
        return self.source.ending

    async def batches(self) -> AsyncIterator[Sequence[Step]]:
        async for batch in self.source.batches():
            self._steps.extend(batch)
            yield batch

    async def done(self, passed_on: bool) -> None:
        if passed_on:
            await self.save(self.recording())

    def recording(self) -> RecordedResponse:
        """What the source sent, as a cassette keeps it: no secrets, times from the headers."""
        source = self.source
        headers = redact_headers(
            [
                (k, v)
                for k, v in source.received
                if k not in DROPPED_HEADERS and not k.startswith("x-tapedeck-")
            ],
            self.secret_headers,
        )
        if not source.head.stream:
            text = source.payload.decode("utf-8", errors="replace")
            data = json_or_text(text) if text.strip() else None
            is_json = data is not None and not isinstance(data, str)
            return RecordedResponse(
                source.status,
                headers,
                source.time_to_headers_ms,
                body=redact_value(data) if is_json else None,
                text=None if is_json or not text else redact_value(text),
            )
        start = source.headers_at
        events = tuple(
            RecordedEvent(s.event, redact_value(s.data), (s.at - start) * 1000) for s in self._steps
        )
        cut = source.ending is Ending.CUT
        return RecordedResponse(
            source.status,
            headers,
            source.time_to_headers_ms,
            events=events,
            end=StreamEnd.DISCONNECT if cut else StreamEnd.COMPLETE,
            end_at_ms=(source.end_at - start) * 1000,
        )
