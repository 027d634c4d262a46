"""Many concurrent streams at recorded timing, every byte of every stream checked.

All connections are opened and all requests sent at once; each body must be exactly the
bytes the cassette's events make (framing, order, nothing lost or added) and end as HTTP
says. How late each event arrives against its recorded offset (from the stream's first
event) is measured, not asserted.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from . import cassettes, rawhttp
from .outcome import Outcome
from .proc import OtherLoad, Server, tracebacks

SHORT_STREAMS, FULL_STREAMS = 100, 1_000
DELTAS, GAP_MS = 30, 20.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _all(server: Server, count: int) -> list[rawhttp.Response]:
    raw = rawhttp.request(server.host, server.port, "POST", "/v1/messages", cassettes.ask("go"))
    return await asyncio.gather(
        *(rawhttp.exchange(server.host, server.port, raw, wait_s=60) for _ in range(count))
    )


def run(full: bool, src: Path | None = None) -> Outcome:
    count = FULL_STREAMS if full else SHORT_STREAMS
    outcome = Outcome("streams")
    words = [f" word{i}" for i in range(DELTAS)]
    events = cassettes.message_events(words, GAP_MS)
    expected = cassettes.wire_bytes(events)
    ends = cassettes.event_ends(events)
    offsets = [e["at_ms"] for e in events]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cassettes.write(root, "paced", [cassettes.streamed("go", events)])
        with Server(["--cassettes", str(root), "--timing", "recorded"], src) as server:
            load = OtherLoad(server.pid)
            rss_before = server.rss_kb()
            responses = rawhttp.run(_all(server, count))
            other = load.cores()
            rss_after = server.rss_kb()
            lines = server.stop()
    bad = [r for r in responses if r.status != 200 or not r.complete or r.body != expected]
    late: list[float] = []
    for r in responses:
        if r in bad or not r.reads:
            continue
        arrivals = []
        for end in ends:
            arrivals.append(next(t for t, size in r.reads if size >= end))
        late += [
            abs((a - arrivals[0]) * 1000 - (o - offsets[0]))
            for a, o in zip(arrivals, offsets, strict=True)
        ]
    outcome.figure("concurrent streams", count)
    outcome.figure("bytes checked", sum(len(r.body) for r in responses))
    outcome.figure("streams wrong, short or unfinished", len(bad))
    outcome.figure(
        "event lateness p50/p99/max ms",
        f"{percentile(late, 0.5):.1f} / {percentile(late, 0.99):.1f} / {max(late or [0]):.1f}",
    )
    outcome.figure("server RSS before/after kB", f"{rss_before:,} / {rss_after:,}")
    outcome.check(
        not bad,
        f"{len(bad)} of {count} streams were not the cassette's bytes: "
        f"{[(r.status, r.error, len(r.body)) for r in bad[:5]]}",
    )
    outcome.check(not tracebacks(lines), f"tracebacks in the server log: {tracebacks(lines)[:3]}")
    if other is not None and other > 0.3:
        outcome.notes.append(f"other processes used {other:.1f} cores: timing may be disturbed")
    outcome.seconds = time.perf_counter() - started
    return outcome
