"""The time quota windows run on: the server's clock, or a test's own that it moves itself.

By default every request reads the server's clock, which follows the wall clock (kept on a
monotonic counter, so a change of the system time does not move it). ``POST
/_tapedeck/clock`` with an ``x-tapedeck-test-id`` gives that test a clock of its own that
stands still from then on and moves only when told to (``{"advance_s": 30}``), so a test of a
client that paces itself runs in milliseconds and the same way every time; without a test id
it stops the server's clock instead, for every request that has no clock of its own.

Readings are seconds since the Unix epoch, so a reading is also a date (the
``anthropic-ratelimit-*-reset`` headers are dates on the request's clock).
"""

from __future__ import annotations

import time

from ..per_test import MAX_TEST_IDS

_EPOCH_AT_START = time.time()
_MONOTONIC_AT_START = time.monotonic()


def wall() -> float:
    """The wall clock as it was at start, moved on by a monotonic counter since."""
    return _EPOCH_AT_START + (time.monotonic() - _MONOTONIC_AT_START)


class Clock:
    """A clock that runs with the wall clock, or stands still at :attr:`stopped_at`."""

    __slots__ = ("stopped_at",)

    def __init__(self, stopped_at: float | None = None) -> None:
        #: The reading while the clock stands still; ``None`` while it runs.
        self.stopped_at = stopped_at

    def now(self) -> float:
        return wall() if self.stopped_at is None else self.stopped_at

    @property
    def running(self) -> bool:
        return self.stopped_at is None


class Clocks:
    """The server's clock and the clocks of the test ids that have their own."""

    def __init__(self, limit: int = MAX_TEST_IDS) -> None:
        self.server = Clock()
        #: The test ids' own clocks: the ``limit`` set most recently (``max_test_ids``).
        self.limit = limit
        self.scoped: dict[str, Clock] = {}

    def clock(self, test_id: str | None) -> Clock:
        """The clock that requests with this test id read (``""``/``None``: none)."""
        return (self.scoped.get(test_id) if test_id else None) or self.server

    def now(self, test_id: str) -> float:
        # clock(test_id).now(), inline: every request under a quota reads it
        clock = (self.scoped.get(test_id) if test_id else None) or self.server
        stopped = clock.stopped_at
        if stopped is not None:
            return stopped
        return wall()

    def advance(self, test_id: str | None, seconds: float) -> Clock:
        """Stop the test id's clock (or the server's) where it is and move it ``seconds``
        ahead. A test id's own clock starts from the server's reading."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        current = self.clock(test_id).now()
        clock = Clock(current + seconds)
        if test_id:
            self.scoped.pop(test_id, None)
            if len(self.scoped) >= self.limit:
                del self.scoped[next(iter(self.scoped))]
            self.scoped[test_id] = clock
        else:
            self.server = clock
        return clock

    def release(self, test_id: str | None) -> Clock:
        """A test id back on the server's clock; without one, the server's clock back on
        the wall clock. Returns the clock the scope now reads."""
        if test_id:
            self.scoped.pop(test_id, None)
        else:
            self.server = Clock()
        return self.clock(test_id)

    def reset(self, test_id: str | None) -> None:
        """What ``POST /_tapedeck/reset`` does: one test id's clock dropped, or every clock
        back on the wall clock."""
        if test_id:
            self.scoped.pop(test_id, None)
        else:
            self.scoped.clear()
            self.server = Clock()
