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
from typing import Any

import redis
import redis.asyncio

from ..state.shared import PREFIX, script
from .exchange import Exchange
from .journal import Entry, Journal, Watcher

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
    """The last ``size`` exchanges of every worker, oldest first, in Redis."""

    def __init__(self, client: redis.Redis, url: str, size: int, body_limit: int, ttl: float):
        super().__init__(size, body_limit)
        self.client = client
        self.url = url
        self.ttl = max(1, round(ttl))
        self._add = script(client, _ADD)
        self._clear = script(client, _CLEAR)
        self._listener: asyncio.Task[None] | None = None

    def add(self, exchange: Exchange) -> None:
        self.trim(exchange)
        entry = exchange.as_json()
        del entry["id"]
        text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        exchange.id = int(self._add(keys=[ENTRIES, IDS, NEW], args=[text, self.size, self.ttl]))

    def select(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """The kept entries of ``test_id`` (every test's for ``None``) after id ``since``."""
        texts: list[str] = self.client.lrange(ENTRIES, 0, -1)  # type: ignore[assignment]
        found = (StoredEntry(t) for t in texts)
        return [e for e in found if e.id > since and (test_id is None or e.test_id == test_id)]

    def clear(self, test_id: str | None = None) -> int:
        """Forget the entries of ``test_id`` (all for ``None``); return how many went."""
        if test_id is None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.llen(ENTRIES)
                pipe.delete(ENTRIES)
                count, _ = pipe.execute()
            return int(count)
        return int(self._clear(keys=[ENTRIES], args=[test_id]))

    @contextmanager
    def watch(self, test_id: str | None, since: int | None) -> Iterator[Watcher]:
        """A :class:`Watcher` of every worker's new entries (first the kept ones after
        ``since``)."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        with super().watch(test_id, since) as watcher:
            yield watcher

    async def _listen(self) -> None:
        """Hand each entry published by any worker to this worker's live readers."""
        client = redis.asyncio.Redis.from_url(self.url, decode_responses=True)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(NEW)
            await pubsub.get_message(timeout=1.0)  # the confirmation: nothing is missed now
            for watcher in self._watchers:  # what arrived before: the watchers drop repeats
                for entry in self.select(watcher.test_id, watcher.last):
                    watcher.put(entry)
            while not self.closed:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is None:
                    continue
                entry = StoredEntry(str(message["data"]))
                for watcher in self._watchers:
                    watcher.put(entry)
        finally:
            with contextlib.suppress(redis.RedisError, OSError):
                await pubsub.aclose()
                await client.aclose()
