"""The ``/v1/`` handler: each API request answered from a cassette or through the upstream.

One request, end to end: :class:`~tapedeck.server.request.RequestReader` parses it; in the
modes that replay, the library finds the interactions that match, the sequence position
picks one and the cassette source gives its plan; otherwise the upstream source is opened
(with a recording tap in the modes that record). Faults that fire shape what is sent, and
the writer sends it. Errors tapedeck answers itself have the API's shape.
"""

from __future__ import annotations

import time
from functools import partial

from starlette.types import Receive, Scope, Send

from ..cassette.library import CassetteLibrary, Hit
from ..config import Mode, Settings
from ..errors import APIError, StreamCut, UpstreamError
from ..pipeline import LiveSource, Plan
from ..record.recorder import Recorder
from ..record.tap import Tap
from ..shaping.fault_book import FaultBook
from ..shaping.faults import Fault, listed
from ..shaping.shaper import Shaper, fault_header, replacement, status_plan
from ..source.batches import BATCHES
from ..source.cassette import CassetteSource
from ..source.sequences import Sequences
from ..source.upstream import Forward, Upstream, UpstreamResponse
from ..validation import Validate
from ..wire.errors import error_plan
from ..wire.writer import Writer
from .incoming import Incoming
from .logs import info, log, log_request
from .modes import RECORD_HINT, decide
from .request import Request, RequestReader


class Said:
    """What the request log line says about a request: which cassette answered, or why not."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text = ""


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
        self.cassettes = CassetteSource(settings.max_delay)
        self.sequences = Sequences(settings.sequence_end, settings.max_test_ids)
        self.faults = FaultBook(settings.faults, settings.max_test_ids)
        self.redactor = recorder.redactor
        self.reader = RequestReader(
            library,
            not settings.mode.proxies,
            settings.max_delay,
            redactor=self.redactor,
            validate=settings.validate,
        )
        self._refuses = settings.validate is Validate.ERROR
        self.mode = settings.mode
        self._replay_only = settings.mode is Mode.NONE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        writer = Writer(scope, receive, send, started)
        said = Said()
        cut = False
        path: str | None = None
        try:
            incoming = await Incoming.read(scope, receive, self.settings.max_body_size)
            request = self.reader.read(incoming)
            path = request.path
            if request.broken:
                self._judge(request, said)
            if self._replay_only and request.cassette is None and request.test_cassette is None:
                # The common case, kept short: replay only, nothing named.
                found = self.library.find(request.shape)
                if found is None:
                    raise self._miss(request, RECORD_HINT, said)
                await writer.plan(self._replay(request, incoming, found, said))
                return
            decision = decide(self.mode, self.library, self.recorder, request)
            if decision.hit is not None and request.broken and self._refuses:
                raise self._refused(request, said)
            if decision.hit is not None:
                await writer.plan(self._replay(request, incoming, decision.hit, said))
            elif decision.upstream:
                await self._proxy(request, incoming, decision.record_to, writer, said)
            else:
                raise self._miss(request, decision.hint, said)
        except APIError as exc:
            if not said.text:
                said.text = f"{exc.error_type}: {exc.message.removeprefix('tapedeck: ')[:120]}"
            await writer.plan(error_plan(exc.status, exc.message, exc.error_type, exc.headers))
        except StreamCut:
            cut = True
            raise
        except Exception as exc:  # a bug: say so in the API's shape, never a traceback
            log.exception("internal error on %s %s: %r", scope["method"], scope["path"], exc)
            if writer.status:
                cut = True
                raise StreamCut("internal error mid-response") from None
            await writer.plan(error_plan(500, "tapedeck: internal error; see the server log"))
        finally:
            log_request(
                scope,
                writer.status,
                said.text,
                started,
                cut,
                writer.client_left,
                writer.too_slow,
                path,
            )

    def _judge(self, request: Request, said: Said) -> None:
        """A request that breaks a rule of the API: refused when only cassettes answer (and
        ``validate`` is ``error``), else said in the log, once per request."""
        if self._replay_only and self._refuses:
            raise self._refused(request, said)
        rules = ", ".join(b.rule for b in request.broken)
        info(
            "%s %s breaks the API's rules (%s): %s",
            request.method,
            request.path,
            rules,
            request.broken[0].message,
        )

    def _refused(self, request: Request, said: Said) -> APIError:
        said.text = f"invalid: {', '.join(b.rule for b in request.broken)}"
        return APIError(400, request.broken[0].message)

    def _miss(self, request: Request, hint: str, said: Said) -> APIError:
        """The 404 for a request nothing answers. The client is told the first difference
        from the closest interaction; the log line names the field, not its values."""
        cassette = request.cassette if request.cassette in self.library.cassettes else None
        closest = self.library.closest(request.shape, cassette)
        said.text = f"miss: {closest.logged}"
        return APIError(
            404,
            f"tapedeck: no cassette matches {request.method} {request.path}; {closest.shown}; "
            f"{hint}",
        )

    def _fire(self, request: Request, streaming: bool, what: str, said: Said) -> tuple[Fault, ...]:
        """The faults that fire on this response; says what answers, and with which."""
        book = self.faults
        active = book.active(request.test_id) if request.faults is None else request.faults
        if not active:
            said.text = what
            return ()
        fired = book.fire(active, request.test_id, streaming)
        if fired:
            said.text = f"{what} faults: {listed(fired)}"
            info("fault on %s %s (%s): %s", request.method, request.path, what, listed(fired))
        else:
            said.text = what
        return fired

    def _replay(self, request: Request, incoming: Incoming, found: Hit, said: Said) -> Plan:
        name = found.cassette.name
        entries = found.entries
        index = self.sequences.peek(request.test_id, name, found.key, len(entries))
        if index is None:
            said.text = f"{name} (sequence used up)"
            raise APIError(
                404,
                f"tapedeck: sequence used up: cassette {name!r} has answered all "
                f"{len(entries)} interactions matching this request (test id "
                f"{request.test_id!r}); POST /_tapedeck/reset rewinds it",
            )
        entry = entries[index]
        served = self.cassettes.served(entry)
        what = name if len(entries) == 1 else f"{name}#{entry.index}"
        fired = self._fire(request, served.is_stream(request.stream), what, said)
        if fired:
            status = replacement(fired)
            if status is not None:  # the recorded answer is still due: the sequence stays
                extra = [("x-tapedeck-source", "fault"), ("x-tapedeck-cassette", name)]
                return status_plan(status, fired, extra)
        timing = request.timing or self.settings.timing
        plan = served.plan(request.stream, timing, fired, incoming)  # may refuse: no advance
        self.sequences.advance(request.test_id, name, found.key)
        return plan

    async def _proxy(
        self,
        request: Request,
        incoming: Incoming,
        name: str | None,
        writer: Writer,
        said: Said,
    ) -> None:
        fired = self._fire(request, request.stream, f"upstream ({name or 'not recorded'})", said)
        status = replacement(fired)
        if status is not None:  # answered without spending an upstream request
            await writer.plan(status_plan(status, fired, [("x-tapedeck-source", "fault")]))
            return
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

        async def open_source() -> LiveSource | Plan:
            try:
                response = await self.upstream.open(forward, extra)
            except UpstreamError as exc:
                said.text = f"502: {exc}"
                return error_plan(502, f"tapedeck: {exc}", "api_error")
            opened.append(response)
            if name is None:
                return response
            recorded = self.recorder.request(
                incoming.method,
                incoming.path,
                incoming.query_items(),
                incoming.header_items,
                request.body,
            )
            return Tap(response, partial(self.recorder.save, name, recorded), self.redactor)

        try:
            await writer.live(open_source, Shaper(fired) if fired else None)
        finally:
            for response in opened:
                await response.aclose()
