"""The recording tap: keeps what a live source sent, before any fault touches it.

It sits between the upstream and the shaper, so a recording holds the API's answer as it
arrived — each event with its arrival time — whatever faults the client saw. It hands the
recording over when the writer says the exchange is over: before the last bytes go out
(so the next request can replay it); the recorder writes it only if the source was passed on
whole, not ended early by a fault. A client that leaves does not end it: the writer reads
the source on to its end (:mod:`tapedeck.wire.drain`), and the recording is handed over then.

A recording that cannot be written never costs the client its answer as a traceback. When
the disk refuses it (full, read-only, not writable: :data:`.verdicts.DISK_ERRORS`), the
client gets the upstream's answer as it came and the recorder logs one line; when the
cassette's name cannot be written (too long, a file where a folder should be), a JSON answer
becomes a 500 ``api_error`` naming the cassette and the reason, a stream ends as it came, and
the server log says what went wrong in one line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..cassette.model import RecordedEvent, RecordedResponse, StreamEnd
from ..errors import RecordingError
from ..pipeline import Ending, Head, Plan, Step
from ..source.upstream import UpstreamResponse
from ..wire.errors import error_plan
from ..wire.headers import DROPPED_HEADERS
from .bodies import whole_body
from .redact import Redactor

#: Hands a recording to the recorder: the response, the request's test id, and whether the
#: client was given all the source sent (:meth:`tapedeck.record.recorder.Recorder.save`).
Save = Callable[[RecordedResponse, str, bool], Awaitable[object]]
TEST_ID = "x-tapedeck-test-id"
log = logging.getLogger("tapedeck")


class Tap:
    """A live source (:class:`~tapedeck.pipeline.LiveSource`) that records what it passes."""

    def __init__(self, source: UpstreamResponse, save: Save, redactor: Redactor) -> None:
        self.source = source
        self.save = save
        self.redactor = redactor
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

    async def done(self, passed_on: bool) -> Plan | None:
        headers = self.source.forward.headers
        test_id = next((v for k, v in reversed(headers) if k.lower() == TEST_ID), "")
        try:  # not passed on whole: the recorder writes nothing, and notes why
            await self.save(self.recording(), test_id, passed_on)
        except RecordingError as exc:
            log.error("recording failed: %s", exc)
            if not self.head.stream:
                return error_plan(500, f"tapedeck: {exc}", "api_error")
        return None

    def recording(self) -> RecordedResponse:
        """What the source sent, as a cassette keeps it: no secrets, times from the headers."""
        source = self.source
        redact = self.redactor
        headers = redact.headers(
            (k, v)
            for k, v in source.received
            if k not in DROPPED_HEADERS and not k.startswith("x-tapedeck-")
        )
        if not source.head.stream:  # JSON, text or bytes (:mod:`.bodies`)
            kind = next((v for k, v in source.received if k == "content-type"), None)
            body, text, binary = whole_body(source.payload, kind, redact)
            return RecordedResponse(
                source.status,
                headers,
                source.time_to_headers_ms,
                body=body,
                text=text,
                binary=binary,
            )
        start = source.headers_at
        events = redact.events(
            [RecordedEvent(s.event, s.data, (s.at - start) * 1000) for s in self._steps]
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
