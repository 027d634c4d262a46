"""Where per-test state lives: in the process (the default), or in Redis when several
workers or replicas answer for one address (the ``state`` setting).

Sequence positions are awaited either way (:class:`Positions`), so that the handler does
not care where they are; Redis is imported only for ``--state redis://...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from ..shaping.fault_book import FaultBook
from ..source.sequences import Sequences

if TYPE_CHECKING:
    from ..config import Settings
    from .shared import Store
    from .shared_faults import SharedFaultBook

#: Fault lists and their counters, in the process or in Redis.
FaultState: TypeAlias = "FaultBook | SharedFaultBook"


class Positions(Protocol):
    """Positions in interaction sequences, per test id (awaited)."""

    async def peek(self, test_id: str, cassette: str, request_key: str, length: int) -> int | None:
        """The index to serve now, or ``None`` when the sequence is used up."""

    async def advance(self, test_id: str, cassette: str, request_key: str, length: int) -> None:
        """Move past the interaction just served, one of ``length``."""

    async def reset(self, test_id: str | None = None) -> int:
        """Rewind every sequence, or only one test id's; return how many were rewound."""


class LocalPositions:
    """:class:`Sequences` of this process, behind the awaited interface."""

    def __init__(self, sequences: Sequences) -> None:
        self.sequences = sequences

    async def peek(self, test_id: str, cassette: str, request_key: str, length: int) -> int | None:
        return self.sequences.peek(test_id, cassette, request_key, length)

    async def advance(self, test_id: str, cassette: str, request_key: str, length: int) -> None:
        self.sequences.advance(test_id, cassette, request_key, length)

    async def reset(self, test_id: str | None = None) -> int:
        return self.sequences.reset(test_id)


@dataclass(frozen=True, slots=True)
class PerTestState:
    """Sequence positions and fault state, and the Redis server they use (if any)."""

    sequences: Positions
    faults: FaultState
    store: Store | None = None


def per_test_state(settings: Settings) -> PerTestState:
    """Sequence positions and fault state where the ``state`` setting says: in this process
    (``memory``), or in the Redis server it names (shared by every worker and replica).
    :class:`~tapedeck.errors.ConfigError` if that server does not answer, or the Redis
    client is not installed (naming the extra that installs it)."""
    if settings.state == "memory":
        limit = settings.max_test_ids
        return PerTestState(
            LocalPositions(Sequences(settings.sequence_end, limit)),
            FaultBook(settings.faults, limit),
        )
    from .shared import Store, check
    from .shared_faults import SharedFaultBook
    from .shared_sequences import SharedSequences

    check(settings.state)
    store = Store(settings.state)
    return PerTestState(
        SharedSequences(store, settings.sequence_end, settings.state_ttl),
        SharedFaultBook(store, settings.faults, settings.state_ttl, settings.max_test_ids),
        store,
    )
