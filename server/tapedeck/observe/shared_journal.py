"""The request journal kept in Redis, so that ``GET /_tapedeck/journal`` (and its live
stream, the web view and ``tapedeck.requests``) shows every worker's and replica's requests
(same interface as :class:`tapedeck.observe.journal.Journal`).

An entry is written once, as the JSON the journal serves: the last ``journal_size`` are a
Redis list (``tapedeck:journal``, ids from ``tapedeck:journal-id``), and each new one is
also published on ``tapedeck:journal-new`` for the live streams of every worker. Beside
it, its text without its request body and what it counts for, so that the entries are
bounded by ``journal_max_bytes`` as in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import APIError
from ..state.shared import PREFIX, RETRY_S, Store
from .exchange import Exchange
from .journal import MAX_BYTES, Entry, Journal, Watcher, body_cost, entry_cost
from .journal_sync import answer, settled

if TYPE_CHECKING:
    from redis.asyncio import Redis

ENTRIES = PREFIX + "journal"
IDS = PREFIX + "journal-id"
NEW = PREFIX + "journal-new"
#: Beside each entry: its text without its request body ("" when it has none kept), and
#: "<bytes it counts>:<of which its body>"; and the bytes of all entries kept.
LEANS = PREFIX + "journal-lean"
COSTS = PREFIX + "journal-cost"
BYTES = PREFIX + "journal-bytes"

#: Numbers the entry (ARGV[1], its JSON without the id; ARGV[2] the same without its body,
#: or ""), counts it as ARGV[3] bytes of which ARGV[4] its body, keeps the last ARGV[5]
#: within ARGV[6] bytes as the in-process journal does (the oldest bodies are left out
#: first, then the oldest entries go), and tells the live streams. Returns the id.
_ADD = """
local id = redis.call('INCR', KEYS[2])
local head = '{"id":' .. id .. ','
local entry = head .. string.sub(ARGV[1], 2)
local lean = ''
if ARGV[2] ~= '' then lean = head .. string.sub(ARGV[2], 2) end
redis.call('RPUSH', KEYS[1], entry)
redis.call('RPUSH', KEYS[4], lean)
redis.call('RPUSH', KEYS[5], ARGV[3] .. ':' .. ARGV[4])
local bytes = redis.call('INCRBY', KEYS[6], ARGV[3])
local size, most = tonumber(ARGV[5]), tonumber(ARGV[6])
local function drop()
  redis.call('LPOP', KEYS[1])
  redis.call('LPOP', KEYS[4])
  local cost = redis.call('LPOP', KEYS[5])
  if cost then bytes = redis.call('DECRBY', KEYS[6], tonumber(string.match(cost, '^%d+'))) end
end
while redis.call('LLEN', KEYS[1]) > size do drop() end
if bytes > most then
  for i, cost in ipairs(redis.call('LRANGE', KEYS[5], 0, -1)) do
    if bytes <= most then break end
    local total, body = string.match(cost, '^(%d+):(%d+)$')
    total, body = tonumber(total), tonumber(body)
    if body and body > 0 then
      redis.call('LSET', KEYS[1], i - 1, redis.call('LINDEX', KEYS[4], i - 1))
      redis.call('LSET', KEYS[4], i - 1, '')
      redis.call('LSET', KEYS[5], i - 1, (total - body) .. ':0')
      bytes = redis.call('DECRBY', KEYS[6], body)
    end
  end
  while bytes > most and redis.call('LLEN', KEYS[1]) > 1 do drop() end
end
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6]}) do
  redis.call('EXPIRE', key, ARGV[7])
end
redis.call('PUBLISH', KEYS[3], entry)
return id
"""
#: Drops one test id's entries (ARGV[1]); returns how many went.
_CLEAR = """
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
local leans = redis.call('LRANGE', KEYS[2], 0, -1)
local costs = redis.call('LRANGE', KEYS[3], 0, -1)
local kept = {{}, {}, {}}
local gone, freed = 0, 0
for i, entry in ipairs(entries) do
  local cost = costs[i] or '0:0'
  if cjson.decode(entry)['test_id'] == ARGV[1] then
    gone = gone + 1
    freed = freed + tonumber(string.match(cost, '^%d+'))
  else
    table.insert(kept[1], entry)
    table.insert(kept[2], leans[i] or '')
    table.insert(kept[3], cost)
  end
end
for k = 1, 3 do
  redis.call('DEL', KEYS[k])
  for i = 1, #kept[k], 1000 do
    redis.call('RPUSH', KEYS[k], unpack(kept[k], i, math.min(i + 999, #kept[k])))
  end
end
redis.call('DECRBY', KEYS[4], freed)
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

    Nothing here blocks the event loop: entries are written by a task (the response has been
    sent by then), and reading is awaited (:meth:`read`, :meth:`forget`). One task per
    process writes them, in the order their requests finished, as many as are waiting in
    one round trip; at most ``size`` wait (the journal would drop older ones at once).
    While the store is unreachable, entries are not kept (the store's outage is logged
    once) and reading answers 503.
    """

    def __init__(
        self, store: Store, size: int, body_limit: int, ttl: float, max_bytes: int = MAX_BYTES
    ):
        super().__init__(size, body_limit, max_bytes)
        self.store = store
        self.ttl = max(1, round(ttl))
        self._add = store.batched_script(_ADD)
        self._clear = store.script(_CLEAR)
        self._listener: asyncio.Task[None] | None = None
        #: Entries waiting to be written, oldest first, and the task writing them.
        self._waiting: deque[tuple[Exchange, list[Any]]] = deque()
        self._writer: asyncio.Task[None] | None = None
        #: Set while the listener is subscribed to new entries.
        self._subscribed = asyncio.Event()
        #: New entries for the watchers still reading their backlog.
        self._held: dict[Watcher, list[Entry]] = {}
        #: Answers other workers' reads once this worker's waiting entries are written.
        self._answering: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Answer the reads of every worker from now on (:mod:`.journal_sync`)."""
        if self._answering is None:
            loop = asyncio.get_running_loop()
            self._answering = loop.create_task(answer(self.store, self.written, self._open))

    def _open(self) -> bool:
        return not self.closed

    def add(self, exchange: Exchange) -> None:
        self.trim(exchange)
        total, body = entry_cost(exchange), body_cost(exchange)
        full, lean = _text(exchange), ""
        if body:  # what it becomes if the journal's bytes need its body
            stripped = copy.copy(exchange)
            stripped.kept = total
            self._leave_out(stripped)
            lean = _text(stripped)
        waiting = self._waiting
        waiting.append((exchange, [full, lean, total, body, self.size, self.max_bytes, self.ttl]))
        if len(waiting) > self.size:  # older than what the journal keeps: it would go at once
            waiting.popleft()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        """Write the waiting entries, in order, as many at a time as are waiting."""
        keys = [ENTRIES, IDS, NEW, LEANS, COSTS, BYTES]
        waiting = self._waiting
        while waiting:
            batch = list(waiting)
            waiting.clear()
            with contextlib.suppress(APIError):  # the store is down: said once, not kept
                found = await self._add([(keys, args) for _, args in batch])
                for (exchange, _), number in zip(batch, found, strict=True):
                    exchange.id = int(number)

    async def written(self) -> None:
        """Return once the waiting entries are written (cancelling this stops the wait, not
        the writing)."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    def select(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """Nothing synchronously: a shared journal is read with :meth:`read`."""
        return []

    async def read(self, test_id: str | None = None, since: int = 0) -> Sequence[Entry]:
        """The kept entries of ``test_id`` (every test's for ``None``) after id ``since``,
        every worker's entries of requests answered by now included."""
        await settled(self.store)
        texts = await self.store.run(lambda client: client.lrange(ENTRIES, 0, -1))
        found = (StoredEntry(str(t)) for t in texts)
        return [e for e in found if e.id > since and (test_id is None or e.test_id == test_id)]

    async def forget(self, test_id: str | None = None) -> int:
        """Forget the entries of ``test_id`` (all for ``None``); return how many went."""
        if test_id is not None:
            return int(await self._clear([ENTRIES, LEANS, COSTS, BYTES], [test_id]))

        async def cleared(client: Redis) -> int:
            async with client.pipeline(transaction=True) as pipe:
                pipe.llen(ENTRIES)
                pipe.delete(ENTRIES, LEANS, COSTS, BYTES)
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


def _text(exchange: Exchange) -> str:
    """An entry's JSON without its id (Redis numbers it)."""
    entry = exchange.as_json()
    del entry["id"]
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
