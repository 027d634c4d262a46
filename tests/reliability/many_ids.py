"""Ever new test ids: the state kept per test id (sequence positions, fault lists and
counters) stays bounded by ``max_test_ids``, and a test id that comes back after its state
was dropped is told so in the log and starts its sequence again.

With ``--before SRC`` the same ids are sent to another tapedeck version too, in the same
run (one without the bound keeps every id until ``POST /_tapedeck/reset``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from tapedeck.per_test import MAX_TEST_IDS

from . import cassettes, rawhttp
from .outcome import Outcome
from .proc import Server, tracebacks

SHORT_IDS, FULL_IDS = 3_000, 20_000
SHORT_LIMIT = 500
WORKERS = 8


def _twice() -> list[dict[str, Any]]:
    first = cassettes.streamed("again", cassettes.message_events([" first"], 0))
    second = cassettes.streamed("again", cassettes.message_events([" second"], 0))
    return [first, second]


def id_of(n: int) -> str:
    return f"test_{n:06d}_with_a_name_as_long_as_pytest_node_ids_are"


async def _ids(server: Server, count: int) -> list[int]:
    statuses: list[int] = []
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            test_id = id_of(n)
            headers = {"x-tapedeck-test-id": test_id, "x-tapedeck-fault": "ping:every=3,times=5"}
            raw = rawhttp.request(
                server.host, server.port, "POST", "/v1/messages", cassettes.ask("again"), headers
            )
            statuses.append((await rawhttp.exchange(server.host, server.port, raw)).status)
            if n % 10 == 0:
                put = rawhttp.request(
                    server.host,
                    server.port,
                    "PUT",
                    "/_tapedeck/faults",
                    {"faults": "truncate:after=9,times=2"},
                    {"x-tapedeck-test-id": test_id},
                )
                statuses.append((await rawhttp.exchange(server.host, server.port, put)).status)

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return statuses


async def _again(server: Server, n: int) -> bytes:
    raw = rawhttp.request(
        server.host,
        server.port,
        "POST",
        "/v1/messages",
        cassettes.ask("again"),
        {"x-tapedeck-test-id": id_of(n)},
    )
    return (await rawhttp.exchange(server.host, server.port, raw)).body


def measure(root: Path, count: int, src: Path | None, limit: int | None) -> dict[str, Any]:
    args = ["--cassettes", str(root), "--timing", "instant"]
    if limit is not None:
        args += ["--max-test-ids", str(limit)]
    with Server(args, src) as server:
        idle = server.rss_kb()
        started = time.perf_counter()
        statuses = rawhttp.run(_ids(server, count))
        seconds = time.perf_counter() - started
        grown = server.rss_kb() - idle
        # An id dropped a little while ago (the ids dropped are remembered, as many again).
        back = max(0, count - (limit or MAX_TEST_IDS) - 2 * WORKERS)
        again = rawhttp.run(_again(server, back))
        warned = server.wait_for(f"test id '{id_of(back)}' was idle", timeout=2)
        lines = server.stop()
    return {
        "growth": grown,
        "seconds": seconds,
        "not_ok": sum(1 for s in statuses if s != 200),
        "first_again": "first"
        if b'" first"' in again
        else "second"
        if b'" second"' in again
        else "?",
        "warned": bool(warned),
        "tracebacks": len(tracebacks(lines)),
    }


def run(full: bool, src: Path | None = None, before: Path | None = None) -> Outcome:
    count = FULL_IDS if full else SHORT_IDS
    outcome = Outcome("test_ids")
    started = time.perf_counter()
    outcome.figure("unique test ids", count)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cassettes.write(root, "twice", _twice())
        runs: list[tuple[str, Path | None, int | None]] = []
        if full:
            runs.append((f"after (max_test_ids {MAX_TEST_IDS:,}, the default)", src, None))
        runs.append((f"after (max_test_ids {SHORT_LIMIT:,})", src, SHORT_LIMIT))
        if before is not None:
            runs.append(("before", before, None))
        for label, tree, limit in runs:
            m = measure(root, count, tree, limit)
            outcome.figure(f"{label}: RSS growth", f"{m['growth'] / 1024:,.1f} MB")
            outcome.figure(
                f"{label}: an early id again gets", f"the {m['first_again']} interaction"
            )
            outcome.check(m["not_ok"] == 0, f"{label}: {m['not_ok']} requests not 200")
            outcome.check(not m["tracebacks"], f"{label}: tracebacks in the log")
            if tree is src and limit is not None and limit < count:
                outcome.check(
                    m["first_again"] == "first", f"{label}: the sequence was not restarted"
                )
                outcome.check(m["warned"], f"{label}: no warning about the forgotten test id")
    outcome.seconds = time.perf_counter() - started
    return outcome
