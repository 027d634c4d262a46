"""The request journal kept in Redis, so that ``GET /_tapedeck/journal`` (and its live
stream, the web view and ``tapedeck.requests``) shows every worker's and replica's requests
(same interface as :class:`tapedeck.observe.journal.Journal`).

An entry is written once, as the JSON the journal serves: the last ``journal_size`` are a
Redis list (``tapedeck:journal``, ids from ``tapedeck:journal-id``), and each new one is
also published on ``tapedeck:journal-new`` for the live streams of every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import APIError
from ..state.shared import PREFIX, RETRY_S, Store
from .exchange import Exchange
from .journal import Entry, Journal, Watcher

if TYPE_CHECKING:
    from redis.asyncio import Redis

ENTRIES = PREFIX + "journal"
IDS = PREFIX + "journal-id"
NEW = PREFIX + "journal-new"

#: Numbers the entry (ARGV[1], its JSON without the id), keeps the last ARGV[2] and tells
#: the live streams. Returns the id.
_ADD = """
local id = redis.call('INCR', KEYS[2])
local entry = '{"id":' .. id .. ',' .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[1], entry)
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', KEYS[3], entry)
return id
"""
#: Drops one test id's entries (ARGV[1]); returns how many went.
_CLEAR = """
local kept, gone = {}, 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if cjson.decode(entry)['test_id'] == ARGV[1] then gone = gone + 1 else kept[#kept + 1] = entry end
end
redis.call('DEL', KEYS[1])
for i = 1, #kept, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 999, #kept)))
end
return gone
"""


class StoredEntry:
    """A journal entry read back from Redis: what the journal's readers use of one."""

    __slots__ = ("data", "id", "test_id")

    def __init__(self, text: str) -> None:
        self.data: dict[str, Any] = json.loads(text)
        self.id: int = self.data["id"]
        self.test_id: str = self.data.get("test_id") or ""

    def as_json(self) -> dict[str, Any]:
        return self.data


class SharedJournal(Journal):
    """The last ``size`` exchanges of every worker, oldest first, in Redis.

    Nothing here blocks the event loop: an entry is written by a task of its own (the
    response has been sent by then), and reading is awaited (:meth:`read`, :meth:`forget`).
    While the store is unreachable, entries are not kept (the store's outage is logged
    once) and reading answers 503.
    """

    def __init__(self, store: Store, size: int, body_limit: int, ttl: float):
        super().__init__(size, body_limit)
        self.store = store
        self.ttl = max(1, round(ttl))
        self._add = store.script(_ADD)
        self._clear = store.script(_CLEAR)
        self._listener: asyncio.Task[None] | None = None
        #: Entries being written (kept so that their tasks are not collected mid-way).
        self._writing: set[asyncio.Task[None]] = set()
        #: Set while the listener is subscribed to new entries.
        self._subscribed = asyncio.Event()
        #: New entries for the watchers still reading their backlog.
        self._held: dict[Watcher, list[Entry]] = {}

    def add(self, exchange: Exchange) -> None:
        self.trim(exchange)
        entry = exchange.as_json()
        del entry["id"]
        text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        task = asyncio.get_running_loop().create_task(self._write(exchange, text))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, exchange: Exchange, text: str) -> None:
        with contextlib.suppress(APIError):  # the store is down: said once, not kept
            found = await self._add([ENTRIES, IDS, NEW], [text, self.size, self.ttl])
            exchange.id = int(found)

    def select(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """Nothing synchronously: a shared journal is read with :meth:`read`."""
        return []

    async def read(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """The kept entries of ``test_id`` (every test's for ``None``) after id ``since``."""
        texts = await self.store.run(lambda client: client.lrange(ENTRIES, 0, -1))
        found = (StoredEntry(str(t)) for t in texts)
        return [e for e in found if e.id > since and (test_id is None or e.test_id == test_id)]

    async def forget(self, test_id: str | None = None) -> int:
        """Forget the entries of ``test_id`` (all for ``None``); return how many went."""
        if test_id is not None:
            return int(await self._clear([ENTRIES], [test_id]))

        async def cleared(client: Redis) -> int:
            async with client.pipeline(transaction=True) as pipe:
                pipe.llen(ENTRIES)
                pipe.delete(ENTRIES)
                count, _ = await pipe.execute()
            return int(count)

        return await self.store.run(cleared)

    @contextmanager
    def watch(self, test_id: str | None, since: int | None) -> Iterator[Watcher]:
        """A :class:`Watcher` of every worker's new entries (first the kept ones after
        ``since``: until they are read, new ones are held back)."""
        loop = asyncio.get_running_loop()
        if self._listener is None or self._listener.done():
            self._listener = loop.create_task(self._listen())
        watcher = Watcher(test_id, self.size)
        catching_up = None
        if since is not None:
            self._held[watcher] = []
            catching_up = loop.create_task(self._backlog(watcher, since))
        self._watchers.append(watcher)
        try:
            yield watcher
        finally:
            self._watchers.remove(watcher)
            self._held.pop(watcher, None)
            if catching_up is not None:
                catching_up.cancel()

    async def _backlog(self, watcher: Watcher, since: int) -> None:
        """Hand ``watcher`` the kept entries after ``since``, then those held back."""
        try:
            await self._subscribed.wait()  # from now on, nothing published is missed
            for entry in await self.read(watcher.test_id, since):
                watcher.put(entry)
        except APIError:
            pass  # the store is down (said once): the live entries follow when it is back
        finally:
            for entry in self._held.pop(watcher, ()):
                watcher.put(entry)  # a repeat of the backlog is dropped

    async def _listen(self) -> None:
        """Hand each entry published by any worker to this worker's live readers; while
        the store is unreachable, try again every :data:`RETRY_S` seconds."""
        while not self.closed and self._watchers:
            try:
                await self.store.run(self._relay)
            except APIError:
                await asyncio.sleep(RETRY_S)

    async def _relay(self, client: Redis) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(NEW)
            await pubsub.get_message(timeout=1.0)  # the confirmation: nothing is missed now
            self._subscribed.set()
            while not self.closed and self._watchers:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is None:
                    continue
                entry = StoredEntry(str(message["data"]))
                for watcher in self._watchers:
                    held = self._held.get(watcher)
                    if held is not None:
                        held.append(entry)
                    else:
                        watcher.put(entry)
        finally:
            self._subscribed.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
