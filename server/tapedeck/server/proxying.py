"""A request answered through the upstream: quotas and faults first, then the live
source (with a recording tap when it is to be recorded), shaped and written."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ..errors import UpstreamError
from ..pipeline import LiveSource, Plan
from ..record.tap import Tap
from ..shaping.shaper import Shaper, fault_header, replacement, status_plan
from ..source.batches import BATCHES
from ..source.upstream import Forward, UpstreamResponse
from ..wire.errors import error_plan
from ..wire.writer import Writer
from .exchange import ERROR, FAULT, UPSTREAM, Exchange
from .incoming import Incoming
from .limits import NOTHING, REQUEST_ONLY, Metered, as_text
from .request import Request

if TYPE_CHECKING:
    from .handler import Handler


async def proxy(
    handler: Handler,
    request: Request,
    incoming: Incoming,
    name: str | None,
    writer: Writer,
    exchange: Exchange,
) -> None:
    """Answer ``request`` through the upstream (recording it to cassette ``name``, if
    given), after the quotas and faults that apply to it."""
    active = handler.active_faults(request)
    instead = [("x-tapedeck-source", "fault")]
    what = f"upstream ({name or 'not recorded'})"
    exchange.cassette = name
    admission, refused = handler.admit(request, active, REQUEST_ONLY, instead, what, exchange)
    if refused is not None:  # answered without spending an upstream request
        exchange.source = FAULT
        await writer.plan(refused)
        return
    fired = handler.fire(request, active, request.stream, what, exchange)
    status = replacement(fired)
    # A request answered upstream takes its max_tokens from the output tokens until its
    # answer says what it used; one a status fault answers takes the request alone.
    reserved = REQUEST_ONLY if status is not None else handler.limits.reservation(request)
    limited = handler.limits.take(admission, reserved) if admission is not None else []
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
    forward = Forward(
        incoming.method,
        incoming.path,
        incoming.query_string.decode("latin-1"),
        incoming.header_items,
        incoming.body,
        writer.started,
        incoming.base_url if incoming.path.startswith(BATCHES) else None,
    )
    opened: list[UpstreamResponse] = []
    metered: list[Metered] = []

    async def open_source() -> LiveSource | Plan:
        try:
            response = await handler.upstream.open(forward, extra)
        except UpstreamError as exc:
            if admission is not None:  # nothing was generated: the estimate goes back
                handler.limits.settle(admission, reserved, NOTHING)
            exchange.text = f"502: {exc}"
            exchange.source = ERROR
            exchange.error = ("api_error", handler.redactor.text(f"tapedeck: {exc}"))
            return error_plan(502, f"tapedeck: {exc}", "api_error")
        opened.append(response)
        source: LiveSource = response
        if name is not None:
            recorded = handler.recorder.request(
                incoming.method,
                incoming.path,
                incoming.query_items(),
                incoming.header_items,
                request.body,
            )
            source = Tap(response, partial(handler.recorder.save, name, recorded), handler.redactor)
        if admission is not None:  # outside the tap: recordings keep the upstream's headers
            source = Metered(source, handler.limits, admission, limited, reserved)
            metered.append(source)
        return source

    shaper = Shaper(fired) if fired else None
    try:
        await writer.live(open_source, shaper)
    finally:
        for source in metered:  # an answer cut short is charged what it had used
            source.settle()
        for response in opened:
            exchange.upstream = response.duration
            await response.aclose()
        if shaper is not None:
            exchange.acted = shaper.where()
