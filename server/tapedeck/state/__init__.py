"""Where per-test state lives: in the process (the default), or in Redis when several
workers or replicas answer for one address (the ``state`` setting)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from ..shaping.fault_book import FaultBook
from ..source.sequences import Sequences

if TYPE_CHECKING:
    from ..config import Settings
    from .shared_faults import SharedFaultBook
    from .shared_sequences import SharedSequences

#: Sequence positions, in the process or in Redis.
SequenceState: TypeAlias = "Sequences | SharedSequences"
#: Fault lists and their counters, in the process or in Redis.
FaultState: TypeAlias = "FaultBook | SharedFaultBook"


def per_test_state(settings: Settings) -> tuple[SequenceState, FaultState]:
    """Sequence positions and fault state where the ``state`` setting says: in this process
    (``memory``), or in the Redis server it names (shared by every worker and replica)."""
    if settings.state == "memory":
        return Sequences(settings.sequence_end), FaultBook(settings.faults)
    from .shared import connect
    from .shared_faults import SharedFaultBook
    from .shared_sequences import SharedSequences

    client = connect(settings.state)
    return (
        SharedSequences(client, settings.sequence_end, settings.state_ttl),
        SharedFaultBook(client, settings.faults, settings.state_ttl),
    )
