"""The ``/v1/`` handler: each API request answered from a cassette or through the upstream.

One request, end to end: :class:`~tapedeck.server.request.RequestReader` parses it; in the
modes that replay, the library finds the interactions that match, the sequence position
picks one and the cassette source gives its plan; otherwise the upstream source is opened
(with a recording tap in the modes that record). Faults that fire shape what is sent, and
the writer sends it. Errors tapedeck answers itself have the API's shape.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from ..cassette.indexed import Hit
from ..cassette.library import CassetteLibrary
from ..config import Mode, Settings
from ..errors import APIError, CassetteError, StreamCut
from ..observe.exchange import (
    CASSETTE,
    ERROR,
    FAULT,
    MISS,
    SYNTHESIZED,
    Exchange,
    Miss,
    unparsed,
)
from ..observe.journal import Journal
from ..observe.metrics import Metrics
from ..pipeline import Plan
from ..record.recorder import Recorder
from ..shaping.fault_book import FaultBook
from ..shaping.faults import Fault
from ..shaping.quota import Admission
from ..shaping.shaper import replacement, status_plan
from ..source.cassette import CassetteSource
from ..source.upstream import Upstream
from ..state import LocalPositions, per_test_state
from ..state.turns import Turns
from ..validation import Validate
from ..wire.errors import error_plan
from ..wire.ratelimit import with_ratelimit
from ..wire.writer import Writer
from .gate import Gate
from .incoming import Incoming
from .limits import REQUEST_ONLY, Limits, as_text
from .logs import called, log, log_request
from .modes import RECORD_HINT, decide
from .proxying import Proxy
from .refusals import judge, miss
from .request import Request, RequestReader


class Handler:
    """Serves ``/v1/`` requests (an ASGI app), with the collaborators the server shares."""

    def __init__(
        self,
        settings: Settings,
        library: CassetteLibrary,
        upstream: Upstream,
        recorder: Recorder,
    ) -> None:
        self.settings = settings
        self.library = library
        self.upstream = upstream
        self.recorder = recorder
        self.cassettes = CassetteSource(settings.max_delay, settings.plan_cache_bytes)
        state = per_test_state(settings)
        self.sequences, self.faults = state.sequences, state.faults
        # Kept in this process (no --state redis://): asked without awaiting, on the path
        # every replayed response takes.
        self._positions = (
            state.sequences.sequences if isinstance(state.sequences, LocalPositions) else None
        )
        self._book = state.faults if isinstance(state.faults, FaultBook) else None
        self._turns = Turns()
        #: The Redis server holding them (``--state redis://...``), else ``None``.
        self.store = state.store
        self.gate = Gate(self.faults, Limits(self.faults))
        self.limits = self.gate.limits
        self._proxy = Proxy(self.gate, upstream, recorder)
        self.redactor = recorder.redactor
        self.reader = RequestReader(
            library,
            not settings.mode.proxies,
            settings.max_delay,
            redactor=self.redactor,
            kept_headers=recorder.kept_headers,
            validate=settings.validate,
            max_file_size=settings.max_file_size,
            budget=settings.request_cache_bytes,
        )
        self._refuses = settings.validate is Validate.ERROR
        self.mode = settings.mode
        self._replay_only = settings.mode is Mode.NONE
        #: The request journal and the metrics (``None`` when turned off).
        self.journal: Journal | None = None
        if settings.journal_size and state.store is not None:  # every worker's requests
            # Imported here: the Redis client costs half a second to import, and only
            # `--state redis://...` needs it.
            from ..observe.shared_journal import SharedJournal

            self.journal = SharedJournal(
                state.store,
                settings.journal_size,
                settings.journal_body_limit,
                settings.state_ttl,
                settings.journal_max_bytes,
            )
        elif settings.journal_size:
            self.journal = Journal(
                settings.journal_size, settings.journal_body_limit, settings.journal_max_bytes
            )
        self.metrics = (
            Metrics(library, recorder.results, settings.metrics_max_rows)
            if settings.metrics
            else None
        )
        self._body_limit = settings.journal_body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        writer = Writer(scope, receive, send, started)
        exchange = Exchange()
        exchange.started = started
        exchange.method = scope["method"]
        exchange.platform = called(scope)
        metrics = self.metrics
        streaming = False
        cut = False
        path: str | None = None
        incoming: Incoming | None = None
        try:
            incoming = await Incoming.read(scope, receive, self.settings.max_body_size)
            request = self.reader.read(incoming)
            exchange.request = request
            path = request.path
            if request.stream and metrics is not None:
                metrics.active += 1
                streaming = True
            if self._replay_only and request.cassette is None and request.test_cassette is None:
                # The common case, kept short: replay only, nothing named.
                found = self.library.find(request.shape)
                if request.broken:
                    self._judge(request, exchange, found, upstream=False)
                if found is None:
                    raise self._miss(request, incoming, RECORD_HINT, exchange)
                await writer.plan(await self._replay(request, incoming, found, exchange))
                return
            decision = decide(self.mode, self.library, self.recorder, request)
            if request.broken:
                self._judge(request, exchange, decision.hit, decision.upstream)
            if decision.hit is not None:
                await writer.plan(await self._replay(request, incoming, decision.hit, exchange))
            elif decision.upstream:
                await self._proxy(request, incoming, decision.record_to, writer, exchange)
            else:
                raise self._miss(request, incoming, decision.hint, exchange)
        except APIError as exc:
            if not exchange.text:
                exchange.text = f"{exc.error_type}: {exc.message.removeprefix('tapedeck: ')[:120]}"
            exchange.error = (exc.error_type, self.redactor.text(exc.message))
            await writer.plan(error_plan(exc.status, exc.message, exc.error_type, exc.headers))
        except CassetteError as exc:  # its events could not be read (changed on disk)
            log.error("%s", exc)
            exchange.text = f"500: {exc.message}"
            exchange.source = ERROR
            exchange.error = ("api_error", f"tapedeck: cassette {exc}")
            await writer.plan(error_plan(500, f"tapedeck: cassette {exc}", "api_error"))
        except StreamCut:
            cut = True
            raise
        except Exception as exc:  # a bug: say so in the API's shape, never a traceback
            log.exception("internal error on %s %s: %r", scope["method"], scope["path"], exc)
            exchange.source = ERROR
            exchange.error = ("api_error", "tapedeck: internal error; see the server log")
            if writer.status:
                cut = True
                raise StreamCut("internal error mid-response") from None
            await writer.plan(error_plan(500, "tapedeck: internal error; see the server log"))
        finally:
            log_request(
                scope,
                writer.status,
                exchange.text,
                started,
                cut,
                writer.client_left,
                writer.too_slow,
                path,
            )
            exchange.close(writer, cut, time.perf_counter() - started)
            if exchange.request is None:
                self._unparsed(exchange, scope, incoming)
            if self.journal is not None:
                self.journal.add(exchange)
            if metrics is not None:
                if streaming:
                    metrics.active -= 1
                metrics.observe(exchange)

    def _unparsed(self, exchange: Exchange, scope: Scope, incoming: Incoming | None) -> None:
        """Note what a recording would keep of a request that could not be read."""
        body = incoming.body if incoming is not None else b""
        kept = body if len(body) <= self._body_limit else b""
        exchange.unparsed = unparsed(scope, self.recorder, kept)

    def _judge(self, request: Request, exchange: Exchange, hit: Hit | None, upstream: bool) -> None:
        judge(request, exchange, hit, self.reader.conversations, self._refuses and not upstream)

    def _miss(
        self, request: Request, incoming: Incoming, hint: str, exchange: Exchange
    ) -> APIError:
        return miss(
            self.library, self.redactor, self.settings.miss_code, request, incoming, hint, exchange
        )

    async def _replay(
        self, request: Request, incoming: Incoming, found: Hit, exchange: Exchange
    ) -> Plan:
        if self._positions is not None:  # in this process: nothing awaits in between
            return await self._answer(request, incoming, found, exchange)
        # In Redis, a position is read, then moved on once the answer is planned: requests
        # of one test for one sequence take turns, so that two never share a position.
        async with self._turns.hold((request.test_id, found.cassette.name, found.key)):
            return await self._answer(request, incoming, found, exchange)

    async def _answer(
        self, request: Request, incoming: Incoming, found: Hit, exchange: Exchange
    ) -> Plan:
        name = found.cassette.name
        entries = found.entries
        test_id, key, count = request.test_id, found.key, len(entries)
        positions = self._positions
        if positions is not None:
            index = positions.peek(test_id, name, key, count)
        else:
            index = await self.sequences.peek(test_id, name, key, count)
        exchange.cassette = name
        if index is None:
            exchange.text = f"{name} (sequence used up)"
            exchange.source = MISS
            exchange.miss = Miss("sequence used up", name, entries[-1].index)
            raise APIError(
                404,
                f"tapedeck: sequence used up: cassette {name!r} has answered all "
                f"{len(entries)} interactions matching this request (test id "
                f"{request.test_id!r}); POST /_tapedeck/reset rewinds it",
            )
        entry = entries[index]
        served = self.cassettes.served(entry)
        exchange.interaction = entry.index
        what = name if len(entries) == 1 else f"{name}#{entry.index}"
        exchange.source = SYNTHESIZED if served.converted[request.stream] else CASSETTE
        book = self._book
        if request.faults is not None:
            active = request.faults
        elif book is not None:
            active = book.active(test_id)
        else:
            active = await self.gate.active(request)
        admission: Admission | None = None
        fired: tuple[Fault, ...] = ()
        if not active:  # the usual case: no fault and no quota to ask
            exchange.text = what
        else:
            instead = [("x-tapedeck-source", "fault"), ("x-tapedeck-cassette", name)]
            cost = served.usage(request.stream)
            admission, refused = self.gate.admit(request, active, cost, instead, what, exchange)
            if refused is not None:  # the recorded answer is still due: the sequence stays
                exchange.source = FAULT
                return refused
            fired = await self.gate.fire(
                request, active, served.is_stream(request.stream), what, exchange
            )
            status = replacement(fired) if fired else None
            if status is not None:  # the recorded answer is still due: the sequence stays
                exchange.source = FAULT
                if admission is not None:
                    instead += as_text(self.limits.take(admission, REQUEST_ONLY))
                return status_plan(status, fired, instead)
        timing = request.timing or self.settings.timing
        plan = served.plan(request.stream, timing, fired, incoming)  # may refuse: no advance
        if positions is not None:
            positions.advance(test_id, name, key, count)
        else:
            await self.sequences.advance(test_id, name, key, count)
        if fired:
            exchange.acted = plan.acted
        if admission is not None:
            plan = with_ratelimit(plan, self.limits.take(admission, served.usage(request.stream)))
        return plan
