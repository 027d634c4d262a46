"""One API request as tapedeck saw it: what its log line says and what its journal entry holds.

The handler fills an :class:`Exchange` while it answers — the parsed request, what answered
(a cassette and interaction, the upstream, a fault, or nothing and why), the faults that
fired — and closes it with the writer's counts: status, events and bytes sent, how the body
ended, how long it took. Everything it holds is already redacted as a recording would be.

Filling one costs a few attribute stores per request; its JSON form (:meth:`Exchange.as_json`)
is built only when someone reads the journal.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.types import Scope

from ..cassette.model import RecordedRequest
from ..cassette.save import request_mapping
from ..record.recorder import Recorder
from ..shaping.faults import WHOLE_RESPONSE_KINDS, Fault, FaultKind
from ..validation.model import Broken
from ..wire.writer import Writer
from .miss import Miss as Miss  # where the handler and the journal find it

#: ``source``: what answered a request.
CASSETTE = "cassette"
UPSTREAM = "upstream"
SYNTHESIZED = "synthesized"
FAULT = "fault"
MISS = "miss"
ERROR = "error"
SOURCES = (CASSETTE, UPSTREAM, SYNTHESIZED, FAULT, MISS, ERROR)
TEST_ID = "x-tapedeck-test-id"
#: ``end``: how the response body ended.
COMPLETE = "complete"
CUT = "cut"
CLIENT_LEFT = "client_left"


class Asked(Protocol):
    """What an exchange reads of the request it describes: the handler's parsed request
    (:class:`tapedeck.server.request.Request`), named here by shape so that observing
    depends on nothing of the server's."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def body(self) -> object: ...
    @property
    def stream(self) -> bool: ...
    @property
    def test_id(self) -> str: ...
    @property
    def broken(self) -> tuple[Broken, ...]: ...
    @property
    def size(self) -> int: ...
    def without_body(self) -> Asked:
        """The same request with its body left out (the journal's ``journal_body_limit``)."""
        ...


class Exchange:
    """One ``/v1/`` request and its response, filled in by the handler and the writer.

    Every field has a class-level default, so making one costs nothing but the object, and
    a request sets only what it has: a replayed one its request, cassette, interaction and
    source, then the writer's counts (:meth:`close`).
    """

    #: When the request arrived (``time.perf_counter()``), and its method.
    started: float = 0.0
    method: str = ""
    #: Set by the journal: entries count from 1.
    id: int = 0
    #: The parsed request; ``None`` if it could not be read (then ``unparsed`` is set).
    request: Asked | None = None
    #: What answered (one of :data:`SOURCES`).
    source: str = ERROR
    #: The cassette that answered (or would have: a used-up sequence) and its interaction.
    cassette: str | None = None
    interaction: int | None = None
    #: What the request log line says answered the request.
    text: str = ""
    #: The writer's counts: the status sent (0 before the headers), body bytes and events
    #: sent; seconds from the request arriving to the end of the response; how it ended.
    status: int = 0
    bytes: int = 0
    events: int = 0
    duration: float = 0.0
    end: str = COMPLETE
    #: The faults that fired, and where each acted (see :attr:`Plan.acted`); the writer's
    #: idle pings and byte cut (:meth:`close` copies them when faults fired).
    faults: tuple[Fault, ...] = ()
    acted: tuple[tuple[str, tuple[int, ...]], ...] = ()
    pings: list[int] | None = None
    cut_at: int | None = None
    miss: Miss | None = None
    #: The error tapedeck answered itself: ``(type, message)``.
    error: tuple[str, str] | None = None
    #: Seconds the upstream took, from sending the request to the end of its answer.
    upstream: float | None = None
    #: The body's size in bytes when it was too large to keep (``journal_body_limit``).
    omitted: int | None = None
    #: For a request that could not be read: its test id, what a recording keeps, and the
    #: size of the body it keeps.
    unparsed: tuple[str, RecordedRequest, int] | None = None
    #: Set by the journal: the bytes the entry counts for (``journal_max_bytes``).
    kept: int = 0
    #: For a platform client's request (docs/platforms.md): the platform's front door and
    #: the path the client sent, before it was mapped onto the first-party one.
    platform: tuple[str, str] | None = None

    def close(self, writer: Writer, cut: bool, duration: float) -> None:
        """Take the writer's counts once the response is over."""
        self.status = writer.status
        self.bytes = writer.bytes
        self.events = writer.events
        self.duration = duration
        if writer.client_left or cut:
            self.end = CLIENT_LEFT if writer.client_left else CUT
        if self.faults:
            self._faulted(writer)

    def _faulted(self, writer: Writer) -> None:
        self.pings = writer.pings
        self.cut_at = whole = writer.cut_at
        if whole is None:  # cut when the plan was shaped, if at all
            planned = dict(self.acted)
            cuts = [planned.get(f.text) for f in self.faults if f.after_bytes is not None]
            whole = next((at[0] for at in cuts if at), None)
        if whole is not None:  # the event the cut fell in was not sent whole
            self.events = min(self.events, whole)

    @property
    def test_id(self) -> str:
        if self.request is not None:
            return self.request.test_id
        return self.unparsed[0] if self.unparsed is not None else ""

    @property
    def path(self) -> str:
        """The path, redacted."""
        if self.request is not None:
            return self.request.path
        return self.unparsed[1].path if self.unparsed is not None else ""

    def recorded(self) -> RecordedRequest:
        """The request as a recording would keep it."""
        request = self.request
        if request is None:
            assert self.unparsed is not None
            return self.unparsed[1]
        return RecordedRequest(
            request.method, request.path, request.query, request.headers, request.body
        )

    def fault_list(self) -> list[dict[str, Any]]:
        """Each fault that fired: its spec, kind and the indices of the events where it acted
        (in the stream the client got), or ``None`` for one that acts on the whole response."""
        planned = dict(self.acted)
        pings = self.pings or []
        listed = []
        for fault in self.faults:
            events: list[int] | None
            if fault.kind in WHOLE_RESPONSE_KINDS:
                events = None
            elif fault.kind is FaultKind.PING and fault.interval_ms:
                events = list(pings) if _shortest(fault, self.faults) else []
            elif fault.after_bytes is not None and fault.text not in planned:
                cut = self.cut_at is not None and _first_cut(fault, self.faults)
                events = [self.cut_at] if cut and self.cut_at is not None else []
            else:
                events = [_on_the_wire(i, pings) for i in planned.get(fault.text, ())]
            listed.append({"spec": fault.text, "kind": str(fault.kind), "events": events})
        return listed

    def as_json(self) -> dict[str, Any]:
        """The journal entry (docs/observe.md lists its fields)."""
        request = self.request
        mapping = request_mapping(self.recorded())
        mapping.pop(
            "client", None
        )  # known only for a miss (``miss.client``), not looked up per request
        if self.omitted is not None:
            mapping["body_omitted"] = self.omitted
        return {
            "id": self.id,
            "at": _iso(self.started + _WALL_CLOCK),
            "test_id": self.test_id,
            "method": self.method,
            "path": self.path,
            "stream": request.stream if request is not None else False,
            "status": self.status or None,
            "source": self.source,
            "cassette": self.cassette,
            "interaction": self.interaction,
            "faults": self.fault_list() if self.faults else [],
            "miss": self.miss.as_json() if self.miss is not None else None,
            "events": self.events,
            "bytes": self.bytes,
            "duration_ms": round(self.duration * 1000, 3),
            "end": self.end,
            "error": {"type": self.error[0], "message": self.error[1]} if self.error else None,
            "broken": [{"rule": b.rule, "message": b.message} for b in request.broken]
            if request is not None
            else [],
            "upstream_ms": round(self.upstream * 1000, 3) if self.upstream is not None else None,
            "request": mapping,
            "platform": (
                {"name": self.platform[0], "path": self.platform[1]} if self.platform else None
            ),
        }


def unparsed(scope: Scope, recorder: Recorder, body: bytes) -> tuple[str, RecordedRequest, int]:
    """The test id of a request that tapedeck refused, and what a recording would keep of
    it: its body too if that is JSON (a bad header is refused before the body is read)."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    test_id = next((v for k, v in reversed(headers) if k.lower() == TEST_ID), "")
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    try:
        # Decoded strictly first: json.loads of bytes would let UTF-8-encoded surrogates
        # through (surrogatepass), and the journal could then not be written as JSON.
        parsed = json.loads(body.decode("utf-8")) if body.strip() else None
    except (ValueError, RecursionError):  # not JSON: what was wrong is in the error
        parsed = None
    kept = recorder.request(scope["method"], scope["path"], query, headers, parsed)
    return test_id, kept, len(body) if parsed is not None else 0


#: ``time.time()`` minus ``time.perf_counter()``: when a request arrived, on the wall clock.
_WALL_CLOCK = time.time() - time.perf_counter()


def _iso(at: float) -> str:
    stamp = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _shortest(fault: Fault, faults: Sequence[Fault]) -> bool:
    """Whether ``fault`` is the ``ping:interval`` the writer used (the shortest one)."""
    intervals = [f.interval_ms for f in faults if f.kind is FaultKind.PING and f.interval_ms]
    return fault.interval_ms == min(intervals)


def _first_cut(fault: Fault, faults: Sequence[Fault]) -> bool:
    """Whether ``fault`` is the ``disconnect:after_bytes`` that cut (the smallest one)."""
    return fault.after_bytes == min(f.after_bytes for f in faults if f.after_bytes is not None)


def _on_the_wire(index: int, pings: Sequence[int]) -> int:
    """The index of the shaped stream's event ``index`` once the writer's idle pings (at
    the wire indices ``pings``, in order) are counted too."""
    for ping in pings:
        if ping > index:
            break
        index += 1
    return index
