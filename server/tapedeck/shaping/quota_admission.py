"""A request against the quotas (:mod:`tapedeck.shaping.quota`): what it costs
(:class:`Cost`), what admitting it found (:class:`Admission`, and the :class:`Refusal` if
it may not go through), and the limits a quota sets, with the names the API's messages give
them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .faults import QUOTA_LIMITS, Fault
from .rates import Bucket, Rate

__all__ = [
    "COUNTED",
    "Admission",
    "Amounts",
    "Buckets",
    "Cost",
    "Gate",
    "Refusal",
    "limits",
]

#: What the API's messages call each limit.
COUNTED = {
    "requests": "requests",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "tokens": "tokens",
}
Gate = Callable[[str, Fault], bool]
Buckets = tuple[tuple[str, Bucket], ...]
Amounts = dict[str, int]


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request takes from each limit."""

    requests: int = 1
    input_tokens: int = 0
    output_tokens: int = 0

    def estimated(self, max_tokens: object) -> Cost:
        """What a request must find left before it is answered: the same, but ``max_tokens``
        output tokens (the API estimates output tokens from ``max_tokens`` when a request
        arrives, and adjusts to what was used at its end); without a usable ``max_tokens``,
        what the answer reports."""
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            return self
        return Cost(self.requests, self.input_tokens, max_tokens)

    def of(self, limit: str) -> int:
        return self.amounts()[limit]

    def amounts(self) -> dict[str, int]:
        """What it takes from each kind of limit."""
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: the quota and limit it would go over."""

    fault: Fault
    limit: str
    rate: Rate
    #: ``retry-after`` in whole seconds; ``None`` if the request alone is over the limit.
    retry_after: int | None


@dataclass(slots=True)  # not frozen: made for every request, and never changed
class Admission:
    """A request's quotas, read at ``now``: refused, or let through (``waived``: the quotas
    that it went over but whose ``times``/``p`` let it pass; they do not count it)."""

    faults: tuple[Fault, ...]
    test_id: str
    now: float
    refusal: Refusal | None = None
    waived: tuple[Fault, ...] = ()
    #: One quota's buckets as :meth:`Quotas.admit` found them, and the quotas' count of
    #: lookups then: while it is the same, they are the ones a lookup would give.
    held: Buckets | None = None
    moves: int = -1
    #: What the kept buckets held at ``now``, until something is taken from them.
    levels: list[float] | None = None


def limits(fault: Fault) -> list[tuple[str, Rate]]:
    """The limits a quota sets, in header order."""
    return [(name, rate) for name in QUOTA_LIMITS if (rate := getattr(fault, name)) is not None]
