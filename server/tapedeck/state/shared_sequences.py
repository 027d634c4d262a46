"""Sequence positions kept in Redis, so that every worker and replica serves the next
interaction of a sequence (the interface of :class:`tapedeck.source.sequences.Sequences`,
awaited: a call never blocks the event loop)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..source.sequences import SequenceEnd
from .shared import PREFIX, Store, sequence_key

if TYPE_CHECKING:
    from redis.asyncio import Redis


class SharedSequences:
    """Positions in interaction sequences, in Redis under ``tapedeck:seq:<test id>``."""

    def __init__(self, store: Store, end: SequenceEnd, ttl: float) -> None:
        self.store = store
        self.end = end
        self.ttl = max(1, round(ttl))

    async def peek(self, test_id: str, cassette: str, request_key: str, length: int) -> int | None:
        """The index to serve now, or ``None`` when the sequence is used up (``ERROR``)."""
        if length == 1 and self.end is SequenceEnd.REPEAT:
            return 0  # one interaction, served again and again: no position to keep
        key, field = sequence_key(test_id), _field(cassette, request_key)
        found = await self.store.run(lambda client: client.hget(key, field))
        position = int(found) if found is not None else 0
        if position < length:
            return position
        return length - 1 if self.end is SequenceEnd.REPEAT else None

    async def advance(self, test_id: str, cassette: str, request_key: str, length: int) -> None:
        """Move past the interaction just served, one of ``length``."""
        if length == 1 and self.end is SequenceEnd.REPEAT:
            return
        key, field = sequence_key(test_id), _field(cassette, request_key)

        async def moved(client: Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, field, 1)
                pipe.expire(key, self.ttl)
                await pipe.execute()

        await self.store.run(moved)

    async def reset(self, test_id: str | None = None) -> int:
        """Rewind every sequence, or only one test id's; return how many were rewound."""

        async def rewound(client: Redis) -> int:
            keys = (
                [sequence_key(test_id)]
                if test_id is not None
                else [k async for k in client.scan_iter(match=PREFIX + "seq:*", count=1000)]
            )
            if not keys:
                return 0
            async with client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.hlen(key)
                pipe.delete(*keys)
                *lengths, _ = await pipe.execute()
            return sum(int(n) for n in lengths)

        return await self.store.run(rewound)


def _field(cassette: str, request_key: str) -> str:
    return f"{cassette}\x00{request_key}"
