"""What the faults and quotas in force do to one request before anything answers it:
which faults apply, whether its quotas admit it (or the 429 that refuses it), and which
faults fire. Replayed and proxied requests both pass through it, as do the admin routes
that change fault lists.

The fault book is in the process or in Redis (``--state redis://...``); the gate's methods
are awaited either way, and a Redis call never blocks the event loop (while the server is
unreachable, a request that needs it gets the 503 that says so).
"""

from __future__ import annotations

from ..observe.exchange import Exchange
from ..pipeline import Plan
from ..shaping.fault_book import FaultBook
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

    async def active(self, request: Request) -> tuple[Fault, ...]:
        """The faults that apply to ``request``: its own, its test id's or the server's."""
        if request.faults is not None:
            return request.faults
        book = self.book
        if isinstance(book, FaultBook):  # in this process: nothing to wait for
            return book.active(request.test_id)
        return await book.active(request.test_id)

    async def listed(self, test_id: str) -> tuple[Fault, ...]:
        """The faults in force for ``test_id`` (``""``: the server-wide ones)."""
        book = self.book
        if isinstance(book, FaultBook):  # in this process: nothing to wait for
            return book.active(test_id)
        return await book.active(test_id)

    async def put(self, faults: tuple[Fault, ...], test_id: str | None) -> None:
        """Set the faults of one test id, or server-wide (``PUT /_tapedeck/faults``)."""
        book = self.book
        if isinstance(book, FaultBook):
            book.put(faults, test_id)
        else:
            await book.put(faults, test_id)

    async def clear(self, test_id: str | None) -> None:
        """Drop one test id's faults, or restore the server-wide ones it started with."""
        book = self.book
        if isinstance(book, FaultBook):
            book.clear(test_id)
        else:
            await book.clear(test_id)

    async def rewind(self, test_id: str | None) -> None:
        """Restart ``times`` counters and seeded decisions (one test id's, or all)."""
        book = self.book
        if isinstance(book, FaultBook):
            book.rewind(test_id)
        else:
            await book.rewind(test_id)

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

    async def fire(
        self,
        request: Request,
        active: tuple[Fault, ...],
        streaming: bool,
        what: str,
        exchange: Exchange,
    ) -> tuple[Fault, ...]:
        """The faults that fire on this response; says what answers, and with which."""
        if not active:
            exchange.text = what
            return ()
        book = self.book
        if isinstance(book, FaultBook):
            fired = book.fire(active, request.test_id, streaming)
        else:
            fired = await book.fire(active, request.test_id, streaming)
        # The request's log line says which fired: one line per request, faulted or not.
        exchange.text = f"{what} faults: {listed(fired)}" if fired else what
        if fired:
            exchange.faults += fired
        return fired
