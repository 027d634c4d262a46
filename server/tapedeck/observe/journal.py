"""The request journal: the last ``journal_size`` API requests, for tests and people to read.

- ``GET /_tapedeck/journal``: ``{"entries": [...]}``, oldest first; ``?test_id=ID`` or the
  ``x-tapedeck-test-id`` header narrows it to one test, ``?since=N`` to entries after id N;
- ``DELETE /_tapedeck/journal``: forget every entry (one test id's, scoped the same way);
- ``GET /_tapedeck/journal/stream``: the entries as Server-Sent Events as they happen
  (``event: entry``, ``id:`` the entry's id), scoped the same way; ``?since=N`` (or the
  ``Last-Event-ID`` a reconnecting ``EventSource`` sends) first sends the kept entries after N.

Adding an entry is an append to a bounded deque; entries become JSON only when read.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import APIError
from .exchange import Exchange

#: Seconds between the checks a live stream makes for the server stopping.
_POLL_S = 0.5


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

    def __init__(self, size: int, body_limit: int) -> None:
        self.size = size
        #: Larger request bodies are not kept (``journal_body_limit``).
        self.body_limit = body_limit
        self.entries: deque[Exchange] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._watchers: list[Watcher] = []
        #: Set when the server stops: live streams end.
        self.closed = False

    def add(self, exchange: Exchange) -> None:
        exchange.id = next(self._ids)
        self.trim(exchange)
        self.entries.append(exchange)
        if self._watchers:
            for watcher in self._watchers:
                watcher.put(exchange)

    def trim(self, exchange: Exchange) -> None:
        """Leave out a request body larger than ``body_limit`` (its size is noted)."""
        request = exchange.request
        if request is not None and request.size > self.body_limit:
            exchange.request = request.without_body()
            exchange.omitted = request.size

    def select(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """The kept entries of ``test_id`` (every test's for ``None``) after id ``since``."""
        return [
            e for e in self.entries if e.id > since and (test_id is None or e.test_id == test_id)
        ]

    def clear(self, test_id: str | None = None) -> int:
        """Forget the entries of ``test_id`` (all for ``None``); return how many went."""
        before = len(self.entries)
        if test_id is None:
            self.entries.clear()
        else:
            kept = [e for e in self.entries if e.test_id != test_id]
            self.entries.clear()
            self.entries.extend(kept)
        return before - len(self.entries)

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
        return JSONResponse({"status": "ok", "cleared": journal.clear(test_id)})
    entries = [e.as_json() for e in journal.select(test_id, since or 0)]
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
