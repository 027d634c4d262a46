"""The options of watching what happened: the request journal and the metrics (assembled
in :mod:`.options`)."""

from __future__ import annotations

from . import values
from .option import Option

#: The request journal: entries kept, bodies, bytes.
JOURNAL: tuple[Option, ...] = (
    Option(
        "journal_size",
        values.count,
        1000,
        "API requests kept in the request journal (GET /_tapedeck/journal); the oldest drop "
        "out; 0 turns the journal off",
        "N",
        shown="1000",
    ),
    Option(
        "journal_body_limit",
        values.size,
        256 * 1024,
        "largest request body a journal entry keeps; a larger one is left out (its size is noted)",
        "SIZE",
        shown="256KiB",
    ),
    Option(
        "journal_max_bytes",
        values.size,
        32 * 1024 * 1024,
        "bytes the request journal may hold in all (a kept body counts four times its size); "
        "past it, request bodies are left out oldest first, then the oldest entries drop out",
        "SIZE",
        shown="32MiB",
    ),
)

#: Prometheus metrics.
METRICS: tuple[Option, ...] = (
    Option(
        "metrics",
        values.boolean,
        True,
        "serve Prometheus metrics at GET /metrics; --no-metrics turns them off",
        "",
        shown="on",
        switch=True,
    ),
    Option(
        "metrics_max_rows",
        values.count,
        1024,
        "request counters kept by their request's own path (a few hundred bytes each); past "
        "them a new path is counted by its label, and past twice as many under {other}",
        "N",
        shown="1024",
    ),
)
