"""The options of processes and per-test state: workers, and whether state lives in the
process or in Redis (assembled in :mod:`.options`)."""

from __future__ import annotations

from . import values
from .option import Option

#: Worker processes and where per-test state lives.
STATE: tuple[Option, ...] = (
    Option(
        "workers",
        values.positive,
        1,
        "serve from N processes on one port (replay and passthrough modes); more than one "
        "needs --state redis://...",
        "N",
        shown="1",
    ),
    Option(
        "state",
        values.state,
        "memory",
        "where per-test state lives (sequence positions, fault counters and seeded draws, "
        "faults set through the admin API): memory, or a Redis URL shared by workers and "
        "replicas",
        "memory|redis://HOST:PORT/DB",
        shown="memory",
    ),
    Option(
        "state_ttl",
        values.seconds,
        86_400.0,
        "with Redis state: seconds a test id's state is kept after its last change",
        "S",
        shown="86400",
    ),
)
