"""Where per-test state lives: in the process (the default), or in Redis when several
workers or replicas answer for one address (the ``state`` setting)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from ..shaping.fault_book import FaultBook
from ..source.sequences import Sequences

if TYPE_CHECKING:
    import redis

    from ..config import Settings
    from .shared_faults import SharedFaultBook
    from .shared_sequences import SharedSequences

#: Sequence positions, in the process or in Redis.
SequenceState: TypeAlias = "Sequences | SharedSequences"
#: Fault lists and their counters, in the process or in Redis.
FaultState: TypeAlias = "FaultBook | SharedFaultBook"


@dataclass(frozen=True, slots=True)
class PerTestState:
    """Sequence positions and fault state, and the Redis client they use (if any)."""

    sequences: SequenceState
    faults: FaultState
    client: redis.Redis | None = None


def per_test_state(settings: Settings) -> PerTestState:
    """Sequence positions and fault state where the ``state`` setting says: in this process
    (``memory``), or in the Redis server it names (shared by every worker and replica)."""
    if settings.state == "memory":
        limit = settings.max_test_ids
        return PerTestState(
            Sequences(settings.sequence_end, limit), FaultBook(settings.faults, limit)
        )
    from .shared import connect
    from .shared_faults import SharedFaultBook
    from .shared_sequences import SharedSequences

    client = connect(settings.state)
    return PerTestState(
        SharedSequences(client, settings.sequence_end, settings.state_ttl),
        SharedFaultBook(client, settings.faults, settings.state_ttl),
        client,
    )
