"""What a quota's ``anthropic-ratelimit-*`` headers show, as :data:`Shown` rows.

:meth:`Quotas.standings <tapedeck.shaping.quota.Quotas.standings>` says it for any quotas;
for one quota whose buckets' levels are known (just read, just charged) the same values are
worked out here without reading the buckets again: every response of a quota passes here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..wire.ratelimit import FAMILIES, NEVER, Shown, Standing, reset_second
from .faults import QUOTA_LIMITS
from .rates import EPSILON, Bucket

#: The header family that shows each limit.
FAMILY = {name: name.replace("_", "-") for name in QUOTA_LIMITS}
_INFINITY = math.inf


def rows_of(held: Sequence[tuple[str, Bucket]], levels: Sequence[float], now: float) -> Shown:
    """What one quota's buckets show at ``now``, each holding its level in ``levels``
    then: :meth:`Bucket.standing <tapedeck.shaping.rates.Bucket.standing>` and
    :func:`~tapedeck.wire.ratelimit.reset_second`, inline (a level is never above its
    bucket's capacity), and the ``tokens`` family as ``standings`` makes it."""
    rows: list[tuple[str, int, int, int]] = []
    parts: list[tuple[int, int, int]] = []  # input and output: the tokens family's
    combined = True
    floor, ceil = math.floor, math.ceil
    for (name, bucket), level in zip(held, levels, strict=True):
        full_at = now + (bucket.capacity - level) / bucket.speed
        row = (
            bucket.rate.limit,
            max(0, floor(level + EPSILON)),
            ceil(full_at) if full_at < _INFINITY else NEVER,
        )
        rows.append((FAMILY[name], *row))
        if name == "tokens":
            combined = False
        elif name != "requests":
            parts.append(row)
    if combined and parts:
        if len(parts) == 2:
            (limit, left, reset), (limit2, left2, reset2) = parts
            rows.append(("tokens", limit + limit2, left + left2, max(reset, reset2)))
        else:
            rows.append(("tokens", *parts[0]))
    return tuple(rows)


class Rows:
    """:func:`rows_of`, kept while the values it shows stay the same: a quota far from its
    limits shows the same remaining and reset second request after request."""

    def __init__(self) -> None:
        self._last: tuple[object, tuple[int, ...], Shown] = (None, (), ())

    def of(self, held: Sequence[tuple[str, Bucket]], levels: Sequence[float], now: float) -> Shown:
        """:func:`rows_of` ``(held, levels, now)``."""
        seen: list[int] = []
        floor, ceil = math.floor, math.ceil
        for (_, bucket), level in zip(held, levels, strict=True):
            full_at = now + (bucket.capacity - level) / bucket.speed
            seen.append(floor(level + EPSILON))
            seen.append(ceil(full_at) if full_at < _INFINITY else NEVER)
        key = tuple(seen)
        last = self._last
        if last[0] is held and last[1] == key:  # what rows_of depends on is the same
            return last[2]
        rows = rows_of(held, levels, now)
        self._last = (held, key, rows)
        return rows


def shown_of(standings: dict[str, Standing]) -> Shown:
    """``standings`` as the headers give them, in the headers' order."""
    return tuple(
        (family, s.limit, s.remaining, reset_second(s.reset_at))
        for family in FAMILIES
        if (s := standings.get(family)) is not None
    )
