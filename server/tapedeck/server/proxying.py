"""A request answered through the upstream: quotas and faults first, then the live
source (with a recording tap when it is to be recorded), shaped and written.

A request that is recorded does not depend on its client reading to the end: if the client
leaves, the upstream's answer is read on (for ``record_drain_timeout``) and recorded if the
upstream finishes it. One that is not recorded is cancelled upstream as soon as the client
leaves.

A platform client's request goes upstream in its platform's form when ``upstream_form``
says so (:mod:`tapedeck.platforms.forwarding`); it is recorded, and answered, as the
first-party request its front door made of it.
"""

from __future__ import annotations

import logging
from functools import partial

from ..errors import StreamCut, UpstreamError, error_type_for
from ..observe.exchange import ERROR, FAULT, UPSTREAM, Exchange
from ..pipeline import Ending, LiveSource, Plan
from ..platforms.door import PLATFORM_REQUEST, PlatformRequest
from ..platforms.forwarding import platform_send
from ..platforms.sigv4 import Resigner
from ..record.outcomes import Outcome
from ..record.recorder import Recorder
from ..record.tap import Tap
from ..shaping.shaper import Shaper, fault_header, replacement, status_plan
from ..source.batches import BATCHES
from ..source.upstream import Forward, Upstream, UpstreamResponse
from ..wire.drain import STOPPED, Drain
from ..wire.errors import error_plan
from ..wire.writer import Writer
from .gate import Gate
from .incoming import Incoming
from .limits import NOTHING, REQUEST_ONLY, Metered, as_text
from .request import Request

log = logging.getLogger("tapedeck")


class Proxy:
    """Answers requests through the upstream, past the gate's quotas and faults, recording
    them with ``recorder`` when asked to."""

    def __init__(self, gate: Gate, upstream: Upstream, recorder: Recorder) -> None:
        self.gate = gate
        self.upstream = upstream
        self.recorder = recorder
        #: Re-signs SigV4 requests sent in a platform's form (credentials found once).
        self.resigner = Resigner()

    async def __call__(
        self,
        request: Request,
        incoming: Incoming,
        name: str | None,
        writer: Writer,
        exchange: Exchange,
    ) -> None:
        """Answer ``request`` through the upstream (recording it to cassette ``name``, if
        given), after the quotas and faults that apply to it."""
        active = await self.gate.active(request)
        instead = [("x-tapedeck-source", "fault")]
        what = f"upstream ({name or 'not recorded'})"
        exchange.cassette = name
        admission, refused = self.gate.admit(request, active, REQUEST_ONLY, instead, what, exchange)
        if refused is not None:  # answered without spending an upstream request
            exchange.source = FAULT
            await writer.plan(refused)
            return
        fired = await self.gate.fire(request, active, request.stream, what, exchange)
        status = replacement(fired)
        # A request answered upstream takes its max_tokens from the output tokens until its
        # answer says what it used; one a status fault answers takes the request alone.
        reserved = REQUEST_ONLY if status is not None else self.gate.limits.reservation(request)
        limited = self.gate.limits.take(admission, reserved) if admission is not None else []
        if status is not None:  # answered without spending an upstream request
            exchange.source = FAULT
            await writer.plan(status_plan(status, fired, [*instead, *as_text(limited)]))
            return
        exchange.source = UPSTREAM
        extra = [("x-tapedeck-source", "upstream")]
        if name:
            extra.append(("x-tapedeck-cassette", name))
        if fired:
            extra.append(fault_header(fired))
        forward = self._forward(incoming, writer.started)
        opened: list[UpstreamResponse] = []
        metered: list[Metered] = []

        async def open_source() -> LiveSource | Plan:
            try:
                response = await self.upstream.open(forward, extra)
            except UpstreamError as exc:
                if admission is not None:  # nothing was generated: the estimate goes back
                    self.gate.limits.settle(admission, reserved, NOTHING)
                kind = error_type_for(exc.status)
                exchange.text = f"{kind}: {exc}"
                exchange.source = ERROR
                exchange.error = (kind, self.recorder.redactor.text(f"tapedeck: {exc}"))
                return error_plan(exc.status, f"tapedeck: {exc}", kind)
            opened.append(response)
            source: LiveSource = response
            if name is not None:
                recorded = self.recorder.request(
                    incoming.method,
                    incoming.path,
                    incoming.query_items(),
                    incoming.header_items,
                    request.body,
                    request.uploads,
                )
                source = Tap(
                    response, partial(self.recorder.save, name, recorded), self.recorder.redactor
                )
            if admission is not None:  # outside the tap: recordings keep the upstream's headers
                source = Metered(source, self.gate.limits, admission, limited, reserved)
                metered.append(source)
            return source

        shaper = Shaper(fired) if fired else None
        drain = None
        if name is not None:  # recorded: read on if the client leaves, bounded at a stop
            config = self.upstream.config
            drain = Drain(config.drain_timeout, self.upstream.stopping, config.stop_timeout)
        try:
            if drain is None:
                await writer.live(open_source, shaper, drain)
            else:
                await drain.bounded(writer.live(open_source, shaper, drain))
            if name is not None and writer.gave_up:  # the status the journal has for it
                await self._unfinished(name, request.test_id, writer, writer.gave_up)
        finally:
            for source in metered:  # an answer cut short is charged what it had used
                source.settle()
            for response in opened:
                exchange.upstream = response.duration
                if response.ending is Ending.CUT:  # said on the request's log line
                    exchange.text = f"{exchange.text}; the upstream broke off its answer"
                await response.aclose()
            if shaper is not None:
                exchange.acted = shaper.where()

    def _forward(self, incoming: Incoming, started: float) -> Forward:
        """The request to send upstream: the first-party one, or the platform client's own
        (``upstream_form``)."""
        original: PlatformRequest | None = incoming.scope.get(PLATFORM_REQUEST)
        authorization = incoming.header(b"authorization")
        platform = platform_send(original, authorization, self.upstream.config, self.resigner)
        if platform is not None and original is not None:
            return Forward(
                incoming.method,
                original.raw_path.decode("latin-1"),
                original.query_string.decode("latin-1"),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in original.headers],
                original.body,
                started,
                platform=platform,
            )
        return Forward(
            incoming.method,
            incoming.path,
            incoming.query_string.decode("latin-1"),
            incoming.header_items,
            incoming.body,
            started,
            incoming.base_url if incoming.path.startswith(BATCHES) else None,
            platform,
        )

    async def _unfinished(self, name: str, test_id: str, writer: Writer, gave_up: str) -> None:
        """Say (one log line, and the test's outcomes) that a recording was given up: the
        client left and the upstream did not finish within ``record_drain_timeout``, or the
        server was told to stop and it did not finish within ``record_shutdown_timeout``.
        A client still there is then cut, or answered 503 if it had nothing yet."""
        config = self.upstream.config
        if gave_up == STOPPED:
            when = f"{config.stop_timeout:g} s after the server was told to stop"
            bound = "record_shutdown_timeout"
        else:
            when, bound = f"{config.drain_timeout:g} s later", "record_drain_timeout"
        who = "the client left and " if writer.client_left else ""
        why = (
            f"{who}the upstream had not finished its answer {when} ({bound}); its request was "
            "closed and nothing was written"
        )
        outcome = Outcome(name, writer.status, False, why)
        self.recorder.outcomes.add(test_id, outcome)
        self.recorder.results["unfinished"] += 1
        log.info("%s", outcome.text)
        if writer.client_left:
            return
        if writer.status:  # mid-stream: cut, as a server going away would
            raise StreamCut("the server stopped before the upstream finished")
        said = f"the server is stopping, and the upstream had not answered {when} ({bound})"
        await writer.plan(error_plan(503, f"tapedeck: {said}", "api_error"))
