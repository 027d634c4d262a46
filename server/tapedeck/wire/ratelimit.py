"""Rate limits on the wire: the ``anthropic-ratelimit-*`` headers, ``retry-after`` and the 429.

As the API documents them (https://docs.claude.com/en/api/rate-limits):
``anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}``,
the limit, what is left before a request is refused, and when the limit is fully replenished
as an RFC 3339 date (``2026-01-31T12:00:07Z``); ``retry-after`` (whole seconds) on the 429.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from ..pipeline import Head, Plan, WireHeaders

PREFIX = "anthropic-ratelimit-"
_PREFIX = PREFIX.encode()
#: The header families, in the order the API sends them.
FAMILIES = ("requests", "input-tokens", "output-tokens", "tokens")
#: Each family's three header names, as they go on the wire.
_NAMES = {
    family: tuple(f"{PREFIX}{family}-{part}".encode() for part in ("limit", "remaining", "reset"))
    for family in FAMILIES
}
_LATEST = datetime.max.replace(tzinfo=UTC)
RATE_LIMITS_DOC = "https://docs.claude.com/en/api/rate-limits"
SALES = "https://claude.com/contact-sales"


#: Limits as the headers show them: ``(family, limit, remaining, reset)`` in the headers'
#: order, ``reset`` the second it is full again (:func:`reset_second`).
Shown = tuple[tuple[str, int, int, int], ...]


class Standing(NamedTuple):
    """One limit as the headers show it: the limit, what is left, when it is full again."""

    limit: int
    remaining: int
    reset_at: float


def rfc3339(at: float, exact: bool = False) -> str:
    """Seconds since the epoch as the API's reset dates: UTC, whole seconds, rounded up
    (the limit is full by then), or to the millisecond if ``exact``; dates past year 9999
    are shown as its last second."""
    if not exact:
        return _whole_seconds(reset_second(at))
    try:
        moment = datetime.fromtimestamp(at, UTC)
    except (OverflowError, OSError, ValueError):
        moment = _LATEST
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: The reset second shown for a limit that is never full again.
NEVER = 2**63


def reset_second(at: float) -> int:
    """The second a ``-reset`` header shows for ``at``: the next whole one (the limit is
    full by then)."""
    return math.ceil(at) if math.isfinite(at) else NEVER


@functools.lru_cache(maxsize=1024)  # the same few seconds, over and over
def _whole_seconds(at: int) -> str:
    try:
        moment = datetime.fromtimestamp(at, UTC)
    except (OverflowError, OSError, ValueError):
        moment = _LATEST
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1024)
def _reset_value(at: int) -> bytes:
    return _whole_seconds(at).encode()


def ratelimit_headers(standings: dict[str, Standing]) -> WireHeaders:
    """The headers for the limits in force, by family (``requests``, ``input-tokens``, ...),
    as they go on the wire."""
    pairs: WireHeaders = []
    for family in FAMILIES:
        standing = standings.get(family)
        if standing is not None:
            limit, remaining, reset_at = standing
            pairs += _family(family, limit, remaining, reset_second(reset_at))
    return pairs


def shown_headers(shown: Shown) -> WireHeaders:
    """The headers for limits given as :data:`Shown`, as they go on the wire."""
    pairs: WireHeaders = []
    for family, limit, remaining, reset in shown:
        pairs += _family(family, limit, remaining, reset)
    return pairs


@functools.lru_cache(maxsize=1024)  # a quota far from its limits shows the same values
def _family(family: str, limit: int, remaining: int, reset: int) -> tuple[tuple[bytes, bytes], ...]:
    """One family's three headers, as they go on the wire."""
    names = _NAMES[family]
    return (
        (names[0], b"%d" % limit),
        (names[1], b"%d" % remaining),
        (names[2], _reset_value(reset)),
    )


def without_ratelimit(headers: Iterable[tuple[bytes, bytes]]) -> WireHeaders:
    """``headers`` minus any ``anthropic-ratelimit-*`` (recorded ones, replaced by a quota's)."""
    return [(k, v) for k, v in headers if not k.startswith(_PREFIX)]


class _Made(NamedTuple):
    """The last plan :func:`with_ratelimit` made, and from what."""

    plan: Plan | None
    pairs: WireHeaders
    made: Plan | None


#: A quota's requests are answered from the same kept plan over and over, and while the
#: quota is far from its limits with the same headers: then the plan made last is the one.
_last = _Made(None, [], None)


def with_ratelimit(plan: Plan, pairs: WireHeaders) -> Plan:
    """``plan`` with its rate-limit headers replaced by ``pairs`` (a new plan: the one given
    may be kept and served again)."""
    global _last
    last = _last
    if last.plan is plan and last.made is not None and (last.pairs is pairs or last.pairs == pairs):
        return last.made
    head = plan.head
    headers = [*without_ratelimit(head.headers), *pairs]
    made = Plan(
        Head(head.status, headers, head.stream),
        plan.headers_at,
        plan.steps,
        plan.end_at,
        plan.ending,
        plan.ping_interval,
        plan.byte_limit,
        plan.body,
    )
    _last = _Made(plan, pairs, made)
    return made


def exceeded_message(limit: int, counted: str, window: str, model: str | None) -> str:
    """The API's message for a request that would go over a limit, e.g. for ``limit`` 50,
    ``counted`` "requests" and ``window`` "per minute"."""
    where = "org: tapedeck" + (f", model: {model}" if model else "")
    return (
        f"This request would exceed your organization's rate limit of {limit:,} {counted} "
        f"{window} ({where}). For details, refer to: {RATE_LIMITS_DOC}. You can see the "
        "response headers for current usage. Please reduce the prompt length or the maximum "
        "tokens requested, or try again later. You may also contact sales at "
        f"{SALES} to discuss your options for a rate limit increase."
    )
