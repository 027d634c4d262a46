"""Turns: one request at a time per key, within this process, while it awaits the store.

With ``--state redis://`` a replayed request reads its sequence's position and, once its
answer is planned, moves it on: two round trips, and other requests run in between. Two
requests of one test for one sequence at the same moment would then both read the same
position and get the same interaction. :class:`Turns` makes the second wait for the
first's turn. Only keys someone holds or waits for are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable


class Turns:
    """An :class:`asyncio.Lock` per key, made when first needed and let go when free."""

    def __init__(self) -> None:
        self._held: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for ``key``'s turn, and keep it until the block ends."""
        lock, users = self._held.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._held[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, users - 1)

    def __len__(self) -> int:
        """How many keys are held or waited for."""
        return len(self._held)
