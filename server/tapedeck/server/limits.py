"""Quota faults where the handler meets them: admission, the 429, the rate-limit headers.

Quotas apply to ``POST /v1/messages``, the endpoint the API's request and token limits are
about (token counting and batches have limits of their own). A request its quotas admit
gets ``anthropic-ratelimit-*`` headers that show the limits after it (replacing any that a
recording or the upstream sent); one they refuse gets the API's 429 ``rate_limit_error``
with ``retry-after``. As the API does, a request is admitted on its input tokens and on
the output tokens its ``max_tokens`` may use, then charged what its answer reports. A
replayed answer's usage is known before it is sent and taken at once; a live one takes its
``max_tokens`` when it goes upstream, and what its answer reports is read as it passes
(:class:`Metered`) and settled when it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from ..pipeline import Ending, Head, LiveSource, Plan, Step, WireHeaders
from ..shaping.faults import Fault, FaultKind
from ..shaping.quota import COUNTED, Admission, Cost
from ..shaping.shaper import fault_header
from ..source.usage import UsageMeter
from ..state import FaultState
from ..wire.errors import error_plan
from ..wire.ratelimit import Shown, exceeded_message, shown_headers, without_ratelimit
from .request import Request

#: The endpoint quotas apply to.
QUOTA_PATH = "/v1/messages"
#: What a request costs before its answer says what it used.
REQUEST_ONLY = Cost()
#: No usage at all: what an answer that reported none used.
NOTHING = Cost(requests=0)


def max_tokens_of(request: Request) -> object:
    """The request's ``max_tokens`` (whatever it is: :meth:`Cost.estimated` checks it)."""
    body = request.body
    return body.get("max_tokens") if isinstance(body, dict) else None


class Limits:
    """The quotas of a request, on the fault book's buckets and clocks."""

    def __init__(self, book: FaultState) -> None:
        self.book = book
        #: The last faults in force and the quotas among them: the same tuple, request
        #: after request, while nobody changes the faults.
        self._last: tuple[Sequence[Fault], tuple[Fault, ...]] = ((), ())
        #: The last headers made, and what they show: a quota far from its limits shows
        #: the same values request after request.
        self._shown: tuple[Shown, WireHeaders] = ((), [])
        #: The last estimate made: ``(cost, max_tokens, estimate)``.
        self._need: tuple[Cost, object, Cost] = (NOTHING, None, NOTHING)

    def quotas(self, request: Request, active: Sequence[Fault]) -> tuple[Fault, ...]:
        """The quota faults among ``active`` that apply to ``request``."""
        if request.path != QUOTA_PATH or request.method != "POST":
            return ()
        last = self._last
        if last[0] is active:
            return last[1]
        quotas = tuple(f for f in active if f.kind is FaultKind.QUOTA)
        self._last = (active, quotas)
        return quotas

    def admit(self, request: Request, quotas: Sequence[Fault], cost: Cost) -> Admission:
        """Whether ``request``, whose answer costs ``cost``, may go through now: whether
        its quotas hold that with its ``max_tokens`` as the output (nothing taken yet)."""
        book = self.book
        now = book.clocks.now(request.test_id)
        max_tokens = max_tokens_of(request)
        last = self._need
        if last[0] is cost and type(last[1]) is type(max_tokens) and last[1] == max_tokens:
            need = last[2]
        else:
            need = cost.estimated(max_tokens)
            self._need = (cost, max_tokens, need)
        return book.quotas.admit(quotas, request.test_id, now, need, book.passes)

    def reservation(self, request: Request) -> Cost:
        """What a request answered upstream takes before its answer says what it used."""
        return REQUEST_ONLY.estimated(max_tokens_of(request))

    def settle(self, admission: Admission, reserved: Cost, used: Cost) -> None:
        """Take what a live answer ``used`` from its quotas, now, less the ``reserved``
        estimate taken when it was admitted (which an answer that used less gets back)."""
        change = Cost(0, used.input_tokens, used.output_tokens - reserved.output_tokens)
        if change != NOTHING:
            book = self.book
            book.quotas.take(admission, change, book.clocks.now(admission.test_id))

    def take(self, admission: Admission, cost: Cost) -> WireHeaders:
        """Take ``cost`` for an admitted request; the rate-limit headers it then gets."""
        return self._headers(self.book.quotas.charge(admission, cost))

    def headers(self, admission: Admission) -> WireHeaders:
        """The rate-limit headers that show ``admission``'s quotas now."""
        return self._headers(self.book.quotas.shown(admission))

    def _headers(self, shown: Shown) -> WireHeaders:
        last = self._shown
        if last[0] == shown:
            return last[1]
        headers = shown_headers(shown)
        self._shown = (shown, headers)
        return headers

    def refused(
        self, admission: Admission, request: Request, extra: Sequence[tuple[str, str]]
    ) -> Plan:
        """The API's 429 for a request its quotas refuse."""
        refusal = admission.refusal
        assert refusal is not None
        fault = refusal.fault
        model = request.body.get("model") if isinstance(request.body, dict) else None
        message = fault.message
        if message is None:
            counted = COUNTED[refusal.limit]
            window = refusal.rate.per_window()
            message = exceeded_message(
                refusal.rate.limit, counted, window, model if isinstance(model, str) else None
            )
        if refusal.retry_after is None:  # the request alone is more than the limit
            wait = [("x-should-retry", "false")]
        elif fault.sends_retry_after:
            wait = [("retry-after", str(refusal.retry_after))]
        else:  # as the API once answered: the client must go by the -reset dates
            wait = []
        headers = [*wait, *as_text(self.headers(admission)), fault_header([fault]), *extra]
        return error_plan(429, message, "rate_limit_error", dict(headers))

    def said(self, admission: Admission) -> str:
        """What the request log says about a refused request."""
        refusal = admission.refusal
        assert refusal is not None
        return f"quota: {refusal.limit} over {refusal.fault.text}"


def as_text(headers: WireHeaders) -> list[tuple[str, str]]:
    """Wire headers as text pairs, for the plans that take those."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


class Metered:
    """A live source (:class:`~tapedeck.pipeline.LiveSource`) whose usage is taken from its
    request's quotas when it ends, and whose rate-limit headers are the quotas'."""

    def __init__(
        self,
        source: LiveSource,
        limits: Limits,
        admission: Admission,
        headers: WireHeaders,
        reserved: Cost,
    ) -> None:
        self.source = source
        self.limits = limits
        self.admission = admission
        self.reserved = reserved
        self._headers = headers
        self._settled = False
        self._meter = UsageMeter()

    @property
    def head(self) -> Head:
        head = self.source.head
        return replace(head, headers=[*without_ratelimit(head.headers), *self._headers])

    @property
    def ending(self) -> Ending:
        return self.source.ending

    async def batches(self) -> AsyncIterator[Sequence[Step]]:
        meter = self._meter
        stream = self.source.head.stream
        async for batch in self.source.batches():
            for step in batch:
                if stream:
                    meter.event(step.event, step.data)
                else:
                    meter.raw_body(step.encoded)
            yield batch

    async def done(self, passed_on: bool) -> Plan | None:
        self.settle()
        return await self.source.done(passed_on)

    def settle(self) -> None:
        """Charge what the answer reported so far, once: at its end, or when the client went
        away before it (what was generated until then is what the answer used)."""
        if not self._settled:
            self._settled = True
            self.limits.settle(self.admission, self.reserved, self._meter.cost())
