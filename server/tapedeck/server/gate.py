"""What the faults and quotas in force do to one request before anything answers it:
which faults apply, whether its quotas admit it (or the 429 that refuses it), and which
faults fire. Replayed and proxied requests both pass through it."""

from __future__ import annotations

from ..observe.exchange import Exchange
from ..pipeline import Plan
from ..shaping.faults import Fault, listed
from ..shaping.quota import Admission, Cost
from ..state import FaultState
from .limits import Limits
from .logs import info
from .request import Request


class Gate:
    """The fault book's decisions for one request (``book``), and its quotas (``limits``)."""

    def __init__(self, book: FaultState, limits: Limits) -> None:
        self.book = book
        self.limits = limits

    def active(self, request: Request) -> tuple[Fault, ...]:
        """The faults that apply to ``request``: its own, its test id's or the server's."""
        return self.book.active(request.test_id) if request.faults is None else request.faults

    def admit(
        self,
        request: Request,
        active: tuple[Fault, ...],
        cost: Cost,
        extra: list[tuple[str, str]],
        what: str,
        exchange: Exchange,
    ) -> tuple[Admission | None, Plan | None]:
        """The request's quotas, if any apply: its admission, and the 429 if they refuse it
        (``extra`` and ``what``: the headers and words that say what would have answered)."""
        quotas = self.limits.quotas(request, active) if active else ()
        if not quotas:
            return None, None
        exchange.faults = quotas  # the journal lists them first, then the faults that fire
        admission = self.limits.admit(request, quotas, cost)
        if admission.refusal is None:
            return admission, None
        refused = self.limits.said(admission)
        exchange.text = f"{what} {refused}"
        info("fault on %s %s (%s): %s", request.method, request.path, what, refused)
        return admission, self.limits.refused(admission, request, extra)

    def fire(
        self,
        request: Request,
        active: tuple[Fault, ...],
        streaming: bool,
        what: str,
        exchange: Exchange,
    ) -> tuple[Fault, ...]:
        """The faults that fire on this response; says what answers, and with which."""
        book = self.book
        if not active:
            exchange.text = what
            return ()
        fired = book.fire(active, request.test_id, streaming)
        # The request's log line says which fired: one line per request, faulted or not.
        exchange.text = f"{what} faults: {listed(fired)}" if fired else what
        if fired:
            exchange.faults += fired
        return fired
