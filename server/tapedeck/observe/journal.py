"""The request journal: the last ``journal_size`` API requests, for tests and people to read.

- ``GET /_tapedeck/journal``: ``{"entries": [...]}``, oldest first; ``?test_id=ID`` or the
  ``x-tapedeck-test-id`` header narrows it to one test, ``?since=N`` to entries after id N;
- ``DELETE /_tapedeck/journal``: forget every entry (one test id's, scoped the same way);
- ``GET /_tapedeck/journal/stream``: the entries as Server-Sent Events as they happen
  (``event: entry``, ``id:`` the entry's id), scoped the same way; ``?since=N`` (or the
  ``Last-Event-ID`` a reconnecting ``EventSource`` sends) first sends the kept entries after N.

Adding an entry is an append to a deque; entries become JSON only when read. The journal
holds at most ``journal_size`` entries and ``journal_max_bytes`` bytes (each entry counted by
:func:`entry_cost`): past the bytes, request bodies are left out, oldest first, then the
oldest entries go. An entry that leaves the journal leaves its body behind, so a live
reader's backlog holds bodies only while the journal does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import APIError
from .exchange import Asked, Exchange
from .weight import BODY_FACTOR, ENTRY_BYTES
from .weight import body_cost as body_cost  # where the shared journal finds them
from .weight import entry_cost as entry_cost

#: Seconds between the checks a live stream makes for the server stopping.
_POLL_S = 0.5
#: The bytes all kept entries may count for unless told otherwise (``journal_max_bytes``).
MAX_BYTES = 32 * 1024 * 1024


class Entry(Protocol):
    """What the journal's readers use of an entry: an :class:`Exchange`, or one read back
    from Redis (:mod:`tapedeck.observe.shared_journal`)."""

    @property
    def id(self) -> int: ...

    @property
    def test_id(self) -> str: ...

    def as_json(self) -> dict[str, Any]: ...


class Watcher:
    """One live reader of the journal: the entries it has yet to send (at most the
    journal's size: a reader that falls further behind loses the oldest)."""

    def __init__(self, test_id: str | None, size: int) -> None:
        self.test_id = test_id
        self.pending: deque[Entry] = deque(maxlen=size)
        self.dropped = 0
        self.arrived = asyncio.Event()
        #: The id of the newest entry put.
        self.last = 0

    def put(self, exchange: Entry) -> None:
        if exchange.id <= self.last or (
            self.test_id is not None and exchange.test_id != self.test_id
        ):
            return  # already had (a shared journal may hand an entry twice), or not ours
        self.last = exchange.id
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append(exchange)
        self.arrived.set()

    async def next(self, within: float) -> list[Entry]:
        """The entries that arrived, waiting up to ``within`` seconds for one."""
        if not self.pending:
            try:
                await asyncio.wait_for(self.arrived.wait(), within)
            except TimeoutError:
                return []
        self.arrived.clear()
        batch = list(self.pending)
        self.pending.clear()
        return batch


class Journal:
    """The last ``size`` exchanges, oldest first. Use from the server's event loop."""

    def __init__(self, size: int, body_limit: int, max_bytes: int = MAX_BYTES) -> None:
        self.size = size
        #: Larger request bodies are not kept (``journal_body_limit``).
        self.body_limit = body_limit
        #: What all kept entries may count for (``journal_max_bytes``), and what they do.
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: deque[Exchange] = deque()
        #: The kept entries that still hold their request body, oldest first.
        self._bodies: deque[Exchange] = deque()
        self._ids = itertools.count(1)
        self._watchers: list[Watcher] = []
        #: Set when the server stops: live streams end.
        self.closed = False
        #: The last request added, what its entry counts for and its body's part of that.
        self._last: tuple[Asked | None, int, int] = (None, 0, 0)

    def add(self, exchange: Exchange) -> None:
        exchange.id = next(self._ids)
        request = exchange.request
        if request is not None:  # entry_cost, inline: every request passes here
            size = request.size
            last = self._last
            if last[0] is request:  # the request cache hands the same request again
                cost, body = last[1], last[2]
            else:
                cost, body = self._request_cost(request)
                if size <= self.body_limit:  # a larger body is not held on to for this
                    self._last = (request, cost, body)
            if size > self.body_limit:
                exchange.request = request.without_body()
                exchange.omitted = size
            if exchange.miss is not None:
                cost += exchange.miss.size
            if exchange.error is not None:
                cost += len(exchange.error[1])
        else:
            body = body_cost(exchange)
            cost = entry_cost(exchange, body)
        exchange.kept = cost
        entries = self.entries
        entries.append(exchange)
        self.bytes += cost
        if body:
            self._bodies.append(exchange)
        if len(entries) > self.size:  # the usual case once full: the oldest goes
            self._drop(entries.popleft())
        if self.bytes > self.max_bytes:
            self._make_room()
        if self._watchers:
            for watcher in self._watchers:
                watcher.put(exchange)

    def _request_cost(self, request: Asked) -> tuple[int, int]:
        """What an entry of ``request`` counts for besides its miss and its error, and
        what of that is its body (0 if the journal does not keep it)."""
        if request.size > self.body_limit:
            body = 0
        else:
            body = BODY_FACTOR * request.size if request.body else 0
        cost = ENTRY_BYTES + body + len(request.test_id) + len(request.path)
        for name, value in request.headers:
            cost += len(name) + len(value)
        if request.query:
            for name, value in request.query:
                cost += len(name) + len(value)
        return cost, body

    def trim(self, exchange: Exchange) -> None:
        """Leave out a request body larger than ``body_limit`` (its size is noted)."""
        request = exchange.request
        if request is not None and request.size > self.body_limit:
            exchange.request = request.without_body()
            exchange.omitted = request.size

    def _make_room(self) -> None:
        """Past ``max_bytes``, bodies are left out oldest first, then the oldest entries
        go (the newest one always stays)."""
        entries, bodies = self.entries, self._bodies
        while self.bytes > self.max_bytes and bodies:
            exchange = bodies.popleft()
            cost = self._leave_out(exchange)
            exchange.kept -= cost
            self.bytes -= cost
        while self.bytes > self.max_bytes and len(entries) > 1:
            self._drop(entries.popleft())

    @staticmethod
    def _leave_out(exchange: Exchange) -> int:
        """Forget an entry's request body (its size is noted, as for ``body_limit``);
        return what it counted for."""
        cost = body_cost(exchange)
        if not cost:
            return 0
        request, unparsed = exchange.request, exchange.unparsed
        if request is not None:
            exchange.request = request.without_body()
            exchange.omitted = request.size
        elif unparsed is not None:
            exchange.unparsed = (unparsed[0], replace(unparsed[1], body=None), unparsed[2])
            exchange.omitted = unparsed[2]
        return cost

    def _drop(self, exchange: Exchange) -> None:
        """An entry leaves the journal (the oldest, or one cleared). A live reader still
        to send it gets it without its body, so that what readers hold stays within the
        journal's bytes."""
        bodies = self._bodies
        if bodies and bodies[0] is exchange:
            bodies.popleft()
        if self._watchers:
            self._leave_out(exchange)
        self.bytes -= exchange.kept
        exchange.kept = 0

    def select(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """The kept entries of ``test_id`` (every test's for ``None``) after id ``since``."""
        return [
            e for e in self.entries if e.id > since and (test_id is None or e.test_id == test_id)
        ]

    def clear(self, test_id: str | None = None) -> int:
        """Forget the entries of ``test_id`` (all for ``None``); return how many went."""
        before = len(self.entries)
        kept = [] if test_id is None else [e for e in self.entries if e.test_id != test_id]
        for exchange in self.entries:
            if test_id is None or exchange.test_id == test_id:
                self._drop(exchange)
        self.entries.clear()
        self.entries.extend(kept)
        bodies = [e for e in self._bodies if e.kept]  # those dropped count for nothing
        self._bodies.clear()
        self._bodies.extend(bodies)
        return before - len(self.entries)

    async def read(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """:meth:`select`, awaited (a shared journal reads Redis)."""
        return self.select(test_id, since)

    async def forget(self, test_id: str | None = None) -> int:
        """:meth:`clear`, awaited (a shared journal writes Redis)."""
        return self.clear(test_id)

    @contextmanager
    def watch(self, test_id: str | None, since: int | None) -> Iterator[Watcher]:
        """A :class:`Watcher` of new entries (first the kept ones after ``since``)."""
        watcher = Watcher(test_id, self.size)
        if since is not None:
            for exchange in self.select(test_id, since):
                watcher.put(exchange)
        self._watchers.append(watcher)
        try:
            yield watcher
        finally:
            self._watchers.remove(watcher)


def journal_of(request: Request) -> Journal:
    """The app's journal; 404 in the API's shape when it is off."""
    journal: Journal | None = request.app.state.handler.journal
    if journal is None:
        raise APIError(404, "tapedeck: the request journal is off (journal_size is 0)")
    return journal


def _scope(request: Request) -> tuple[str | None, int | None]:
    """The test id (query, else header) and the ``since`` id a request asks for."""
    test_id = request.query_params.get("test_id") or request.headers.get("x-tapedeck-test-id")
    raw = request.query_params.get("since", request.headers.get("last-event-id"))
    if raw is None:
        return test_id or None, None
    if not raw.strip().isdigit():
        raise APIError(400, f"tapedeck: since must be an entry id (a whole number), got {raw!r}")
    return test_id or None, int(raw)


async def journal_admin(request: Request) -> Response:
    """``GET``/``DELETE /_tapedeck/journal``, scoped by test id."""
    journal = journal_of(request)
    test_id, since = _scope(request)
    if request.method == "DELETE":
        return JSONResponse({"status": "ok", "cleared": await journal.forget(test_id)})
    entries = [e.as_json() for e in await journal.read(test_id, since or 0)]
    return JSONResponse({"entries": entries})


async def journal_stream(request: Request) -> Response:
    """``GET /_tapedeck/journal/stream``: the journal's entries as they happen."""
    journal = journal_of(request)
    test_id, since = _scope(request)

    async def entries() -> AsyncIterator[dict[str, Any]]:
        with journal.watch(test_id, since) as watcher:
            while not journal.closed:
                batch = await watcher.next(_POLL_S)
                if watcher.dropped:
                    yield {"event": "dropped", "data": json.dumps({"count": watcher.dropped})}
                    watcher.dropped = 0
                for exchange in batch:
                    data = json.dumps(exchange.as_json(), ensure_ascii=False)
                    yield {"event": "entry", "id": str(exchange.id), "data": data}

    return EventSourceResponse(entries(), ping=15)
