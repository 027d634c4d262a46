"""Fault lists and the state that gates them, kept in Redis so that every worker and
replica fires the same faults (the interface of
:class:`tapedeck.shaping.fault_book.FaultBook`, awaited: a call never blocks the event loop).

Every request needs its fault lists: a worker keeps those it read, and forgets one as soon
as the worker that changed it announces so (Redis pub/sub, checked without waiting before
each request). A seeded ``p`` draws the same numbers as in one process: Redis counts the
draws, and the worker that makes draw *n* takes the *n*-th number of the seeded stream.
A quota's own ``times`` and ``p`` are counted in the process, as its buckets are.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..shaping.fault_book import FaultBook
from ..shaping.faults import Fault, FaultKind, listed, parse_faults
from .shared import CHANGED, PREFIX, SERVER, Store, counts_key, draws_key, faults_key

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

#: Counts each gated fault against its ``times`` (skipping those used up) and counts the
#: draws of seeded ones, atomically. ARGV: ttl, then (spec, times or -1, seeded 0/1) per
#: fault. Returns per fault: -1 (used up), 0 (counted) or the draw's number (from 1).
_FIRE = """
local out = {}
local drew = false
for i = 2, #ARGV, 3 do
  local spec, times = ARGV[i], tonumber(ARGV[i + 1])
  local n = tonumber(redis.call('HGET', KEYS[1], spec) or '0')
  if times >= 0 and n >= times then
    out[#out + 1] = -1
  else
    redis.call('HINCRBY', KEYS[1], spec, 1)
    if ARGV[i + 2] == '1' then
      out[#out + 1] = redis.call('HINCRBY', KEYS[2], spec, 1)
      drew = true
    else
      out[#out + 1] = 0
    end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if drew then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return out
"""
#: Parsed lists kept by their text (requests and tests reuse a handful).
_PARSED_KEPT = 256
#: Test ids whose lists a worker keeps; and for how long (s) it trusts one it read. A
#: change is announced at once; this bound is for lists that expired (``state_ttl``).
_KNOWN_KEPT = 10_000
_KNOWN_FOR = 1.0
#: Seeded streams a worker keeps (a dropped one is made again, and fast-forwarded to the
#: draw Redis numbered: the same numbers either way).
_STREAMS_KEPT = 1_000


class SharedFaultBook:
    """Fault lists by test id and their ``times`` counters and seeded draws, in Redis."""

    def __init__(
        self, store: Store, defaults: Sequence[Fault], ttl: float, max_test_ids: int
    ) -> None:
        self.store = store
        self.defaults = tuple(defaults)
        self.ttl = max(1, round(ttl))
        self._fire = store.script(_FIRE)
        self._parsed: dict[str, tuple[Fault, ...]] = {}
        #: Per (test id, fault): this worker's seeded stream and how many draws it made.
        self._streams: dict[tuple[str, Fault], tuple[random.Random, int]] = {}
        self._unseeded = random.Random()
        #: Quota buckets, the clocks they run on, and quotas' ``times`` and ``p``, are kept
        #: per process (docs/workers.md).
        self._local = FaultBook((), max_test_ids)
        self.quotas = self._local.quotas
        self.clocks = self._local.clocks
        #: Owner (test id or :data:`SERVER`) -> (its list's text or None, when read).
        self._known: dict[str, tuple[str | None, float]] = {}
        #: Counts the changes announced: a list read while one arrived is not kept.
        self._changes = 0
        self._pubsub: PubSub | None = None
        self._listening = asyncio.Lock()

    async def active(self, test_id: str) -> tuple[Fault, ...]:
        """The faults for a request with this test id (``""`` for none)."""
        await self._catch_up()
        scoped = await self._read(test_id) if test_id else None
        if scoped is not None:
            return self._list(scoped)
        server = await self._read(SERVER)
        return self.defaults if server is None else self._list(server)

    async def put(self, faults: Sequence[Fault], test_id: str | None) -> None:
        """Set the faults for one test id, or server-wide; their counters start afresh."""
        owner = test_id or SERVER
        key, text = faults_key(owner), listed(faults) or "none"
        await self.store.run(lambda client: client.set(key, text, ex=self.ttl))
        await self._announce(owner)
        await self.rewind(test_id or None)

    async def clear(self, test_id: str | None) -> None:
        """Drop one test id's faults, or restore the server-wide faults it started with."""
        owner = test_id or SERVER
        key = faults_key(owner)
        await self.store.run(lambda client: client.delete(key))
        await self._announce(owner)
        await self.rewind(test_id or None)

    # -- the lists this worker has read --------------------------------------------------

    async def _read(self, owner: str) -> str | None:
        """The list text of ``owner`` (a test id or :data:`SERVER`), ``None`` if unset."""
        now = time.monotonic()
        found = self._known.get(owner)
        if found is not None and now - found[1] < _KNOWN_FOR:
            return found[0]
        changes, key = self._changes, faults_key(owner)
        value = await self.store.run(lambda client: client.get(key))
        text = None if value is None else str(value)
        if self._pubsub is not None and changes == self._changes:
            if len(self._known) >= _KNOWN_KEPT:
                self._known.clear()
            self._known[owner] = (text, now)
        return text

    async def _announce(self, owner: str) -> None:
        self._forget(owner)
        await self.store.run(lambda client: client.publish(CHANGED, owner))

    def _forget(self, owner: str | None) -> None:
        self._changes += 1
        if owner is None:
            self._known.clear()
        else:
            self._known.pop(owner, None)

    async def _catch_up(self) -> None:
        """Forget the lists that changed since they were read (told on :data:`CHANGED`);
        subscribe first if this worker has not (nothing is kept until it has)."""
        async with self._listening:
            pubsub = self._pubsub
            if pubsub is None:
                await self.store.run(self._subscribe)
                return
            try:
                while (message := await pubsub.get_message(timeout=0.0)) is not None:
                    if message.get("type") == "message":
                        self._forget(str(message["data"]))
            except self.store.errors as exc:  # the connection went: nothing read is trusted
                self._pubsub = None
                self._forget(None)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                self.store.failed(exc)

    async def _subscribe(self, client: Redis) -> None:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANGED)
            # The confirmation: from now on, nothing is missed.
            await pubsub.get_message(timeout=1.0)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self._forget(None)
        self._pubsub = pubsub

    async def rewind(self, test_id: str | None) -> None:
        """Restart ``times`` counters and seeded decisions (one test id's, or all)."""
        self._local.rewind(test_id)

        async def deleted(client: Redis) -> None:
            if test_id is None:
                keys = [
                    *[k async for k in client.scan_iter(match=PREFIX + "counts:*", count=1000)],
                    *[k async for k in client.scan_iter(match=PREFIX + "draws:*", count=1000)],
                ]
            else:
                keys = [counts_key(test_id), draws_key(test_id)]
            if keys:
                await client.delete(*keys)

        await self.store.run(deleted)
        if test_id is None:
            self._streams.clear()
        else:
            for key in [k for k in self._streams if k[0] == test_id]:
                del self._streams[key]

    async def fire(
        self, faults: Sequence[Fault], test_id: str, streaming: bool
    ) -> tuple[Fault, ...]:
        """The faults that fire on this request; counts it against their ``times``.
        Quotas are not fired here: they act when a request goes over them."""
        applies = [
            f for f in faults if (streaming or not f.streams_only) and f.kind is not FaultKind.QUOTA
        ]
        return tuple(await self._passing(applies, test_id))

    def passes(self, test_id: str, fault: Fault) -> bool:
        """Whether a quota acts on a request that goes over it: counts it against its
        ``times``, then draws against its ``p`` — in this process, as its buckets are."""
        return self._local.passes(test_id, fault)

    async def _passing(self, candidates: list[Fault], test_id: str) -> list[Fault]:
        gated = [f for f in candidates if f.times is not None or f.p < 1]
        if not gated:
            return candidates
        args: list[str | int] = [self.ttl]
        for fault in gated:
            seeded = fault.p < 1 and fault.seed is not None
            args += [fault.text, -1 if fault.times is None else fault.times, int(seeded)]
        results = await self._fire([counts_key(test_id), draws_key(test_id)], args)
        outcome = dict(zip(gated, (int(r) for r in results), strict=True))
        passing: list[Fault] = []
        for fault in candidates:
            result = outcome.get(fault)
            if result is not None:
                if result < 0:
                    continue
                if fault.p < 1 and self._draw(test_id, fault, result) >= fault.p:
                    continue
            passing.append(fault)
        return passing

    def _draw(self, test_id: str, fault: Fault, number: int) -> float:
        """Draw ``number`` (from 1) of the fault's seeded stream, or an unseeded one."""
        if fault.seed is None:
            return self._unseeded.random()
        key = (test_id, fault)
        stream, made = self._streams.get(key, (None, 0))
        if stream is None or made >= number:  # rewound, or another worker's draws
            stream, made = random.Random(f"{fault.seed}\x00{test_id}\x00{fault.text}"), 0
        value = 0.0
        while made < number:
            value = stream.random()
            made += 1
        if key not in self._streams and len(self._streams) >= _STREAMS_KEPT:
            self._streams.clear()
        self._streams[key] = (stream, made)
        return value

    def _list(self, text: str) -> tuple[Fault, ...]:
        found = self._parsed.get(text)
        if found is None:
            found = () if text == "none" else parse_faults(text)
            if len(self._parsed) >= _PARSED_KEPT:
                self._parsed.clear()
            self._parsed[text] = found
        return found
