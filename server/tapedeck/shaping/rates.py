"""Rate limits as the API keeps them: a token bucket per limit.

The API "uses the token bucket algorithm": capacity is continuously replenished up to the
maximum rather than reset at fixed intervals (https://docs.claude.com/en/api/rate-limits).
A :class:`Rate` of ``50/60s`` is a bucket that holds 50 and refills at 50 per 60 seconds,
a little at a time; a request takes what it costs, and one that would take more than the
bucket holds waits until enough has refilled.

Everything here is arithmetic on times given by the caller (seconds, on any clock), so the
same numbers come out however the time is kept (:mod:`tapedeck.shaping.clock`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..wire.ratelimit import Standing

#: Slack for float arithmetic: a bucket that has refilled to within this of a cost holds it.
EPSILON = 1e-9
#: The longest ``retry-after``, in seconds (about 285 million years): a refill that takes
#: longer, in an absurdly long window, is shown as this.
LONGEST_WAIT = float(2**53)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"(\d+)/(\d+(?:\.\d+)?)?([smh])")
#: How the API words a window in its messages ("... 50 requests per minute").
_WINDOW_WORDS = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` per ``window_s`` seconds: a bucket of ``limit`` that refills at that rate."""

    limit: int
    window_s: float

    @property
    def per_second(self) -> float:
        return self.limit / self.window_s

    def per_window(self) -> str:
        """The window as the API's messages say it: ``per minute``, ``per 30 seconds``."""
        word = _WINDOW_WORDS.get(self.window_s)
        if word is not None:
            return f"per {word}"
        for size, unit in ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")):
            if self.window_s % size == 0:
                return f"per {self.window_s / size:g} {unit}"
        return f"per {self.window_s:g} seconds"


def parse_rate(key: str, value: str) -> Rate:
    """``LIMIT/WINDOW`` (``50/60s``, ``20000/1m``, ``1000/h``) as a :class:`Rate`."""
    found = _RATE.fullmatch(value.strip().lower())
    problem = f"{key} must be LIMIT/WINDOW such as 50/60s, 20000/1m or 1000/1h"
    if found is None:
        raise ValueError(f"{problem}, got {value!r}")
    limit, size, unit = found.groups()
    window = float(size or 1) * _UNITS[unit]
    if int(limit) < 1 or not math.isfinite(window) or window <= 0:
        raise ValueError(f"{problem} (a limit >= 1 and a window > 0), got {value!r}")
    return Rate(int(limit), window)


class Bucket:
    """One token bucket: ``level`` units at time ``at``, refilling at the rate's speed.

    A bucket starts full. :meth:`take` may leave it below zero (a cost learned only after
    the answer, as the upstream's token counts are): it is then in debt until it refills.
    """

    __slots__ = ("at", "capacity", "level", "rate", "speed")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.capacity = float(rate.limit)
        self.speed = rate.per_second
        self.level = self.capacity
        self.at = now

    def level_at(self, now: float) -> float:
        """What the bucket holds at ``now`` (a clock that went back refills nothing)."""
        return min(self.capacity, self.level + max(0.0, now - self.at) * self.speed)

    def wait(self, cost: float, now: float) -> float | None:
        """Seconds from ``now`` until the bucket holds ``cost`` (0: it does now); ``None``
        if it never will, because ``cost`` is more than it can hold."""
        if cost > self.capacity + EPSILON:
            return None
        missing = cost - self.level_at(now)
        return 0.0 if missing <= EPSILON else missing / self.speed

    def take(self, cost: float, now: float) -> None:
        """Take ``cost`` at ``now`` (whether or not the bucket holds it); a negative ``cost``
        gives back what an estimate took too much, up to the bucket's capacity."""
        self.level = min(self.capacity, self.level_at(now) - cost)
        self.at = now

    def remaining(self, now: float) -> int:
        """Whole units left at ``now`` (never below 0), as the API's ``-remaining`` says."""
        return max(0, math.floor(self.level_at(now) + EPSILON))

    def full_in(self, now: float) -> float:
        """Seconds from ``now`` until the bucket is full again."""
        return max(0.0, (self.capacity - self.level_at(now)) / self.speed)

    def standing(self, now: float) -> Standing:
        """The limit, what is left and when it is full again, at ``now``."""
        level = self.level_at(now)
        return Standing(
            self.rate.limit,
            max(0, math.floor(level + EPSILON)),
            now + max(0.0, (self.capacity - level) / self.speed),
        )


def retry_after(wait: float) -> int:
    """A wait as the ``retry-after`` header gives it: whole seconds, rounded up, at least 1
    (an earlier retry would fail)."""
    return max(1, math.ceil(min(wait, LONGEST_WAIT) - EPSILON))
