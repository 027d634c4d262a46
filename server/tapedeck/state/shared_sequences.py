"""Sequence positions kept in Redis, so that every worker and replica serves the next
interaction of a sequence (same interface as :class:`tapedeck.source.sequences.Sequences`)."""

from __future__ import annotations

import redis

from ..source.sequences import SequenceEnd
from .shared import PREFIX, sequence_key


class SharedSequences:
    """Positions in interaction sequences, in Redis under ``tapedeck:seq:<test id>``."""

    def __init__(self, client: redis.Redis, end: SequenceEnd, ttl: float) -> None:
        self.client = client
        self.end = end
        self.ttl = max(1, round(ttl))

    def peek(self, test_id: str, cassette: str, request_key: str, length: int) -> int | None:
        """The index to serve now, or ``None`` when the sequence is used up (``ERROR``)."""
        if length == 1 and self.end is SequenceEnd.REPEAT:
            return 0  # one interaction, served again and again: no position to keep
        found = self.client.hget(sequence_key(test_id), _field(cassette, request_key))
        position = int(found) if found is not None else 0
        if position < length:
            return position
        return length - 1 if self.end is SequenceEnd.REPEAT else None

    def advance(self, test_id: str, cassette: str, request_key: str, length: int) -> None:
        """Move past the interaction just served, one of ``length``."""
        if length == 1 and self.end is SequenceEnd.REPEAT:
            return
        key = sequence_key(test_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, _field(cassette, request_key), 1)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def reset(self, test_id: str | None = None) -> int:
        """Rewind every sequence, or only one test id's; return how many were rewound."""
        keys = (
            [sequence_key(test_id)]
            if test_id is not None
            else list(self.client.scan_iter(match=PREFIX + "seq:*", count=1000))
        )
        if not keys:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.hlen(key)
            pipe.delete(*keys)
            *lengths, _ = pipe.execute()
        return sum(int(n) for n in lengths)

    def __len__(self) -> int:
        """How many test ids have positions kept."""
        return sum(1 for _ in self.client.scan_iter(match=PREFIX + "seq:*", count=1000))


def _field(cassette: str, request_key: str) -> str:
    return f"{cassette}\x00{request_key}"
