"""Large requests, every one different: what the server keeps per request stays within its
byte bounds. ``tapedeck serve`` (journal and metrics on) gets distinct 1 MB requests, a
third each replayed from a cassette (hits), answered by nobody (misses) and recorded through
a stand-in upstream (recordings), each with its own test id; its resident memory
(``VmRSS``), after a warm-up of each kind, may grow by at most :data:`FULL_BOUND_MB` over
1,000 of them.

The megabyte is a ``system`` prompt, different in every request, that matching ignores
(``--ignore-body-fields system``): one small cassette answers every hit, as a suite's
cassette answers requests that differ in an ignored field. The journal is told to keep
bodies up to 2 MiB (``--journal-body-limit``), so that only its byte bound
(``journal_max_bytes``) stands between it and every body. The recordings are written whole,
their megabyte requests included, and their *answers* are made a megabyte each
(``--before-record-response``; every other one a stream). After the 1,000 requests every
recording is replayed (a distinct megabyte request again, naming no cassette): the library
holds cassettes whole within ``library_max_bytes`` and the requests of those evicted within
``library_request_max_bytes`` (the defaults in the full run, :data:`SHORT_LIBRARY_BYTES`
each in the short one); past them the least recently used are read from their files again,
found by the digests of their requests' keys — each replay must come back whole.

With ``--before SRC`` the same requests go to another tapedeck version too, in the same run;
that one is stopped early once it has grown by :data:`BEFORE_STOP_MB`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from fake_upstream import FakeUpstream

from . import cassettes, rawhttp
from .outcome import Outcome
from .proc import Server, tracebacks

MB = 1024 * 1024
#: Requests, their size, and the growth allowed (the full run, then the short one).
FULL_REQUESTS, FULL_BODY, FULL_BOUND_MB = 1_000, MB, 64
SHORT_REQUESTS, SHORT_BODY, SHORT_BOUND_MB = 90, MB, 38
#: The journal's byte bound in the short run (the full one uses the default, 32 MiB).
SHORT_JOURNAL_BYTES = "4MiB"
#: The library's bounds (library_max_bytes, library_request_max_bytes) in the short run (the
#: full one: the defaults).
SHORT_LIBRARY_BYTES = "2MiB"
WARM_UP = 6
WORKERS = 4
#: A version without the bounds is stopped once it has grown this much.
BEFORE_STOP_MB = 1_200
KINDS = ("hit", "miss", "record")
#: Written beside the cassettes; the server runs there, so it imports it. ``SIZE`` is the
#: size of a recorded answer.
HOOK = """import dataclasses

SIZE = %d


def large_answer(response):
    text = "y" * SIZE
    if response.events is None:
        body = {**response.body, "content": [{"type": "text", "text": text}]}
        return dataclasses.replace(response, body=body)
    events = list(response.events)
    for i, event in enumerate(events):
        if event.event == "content_block_delta":
            data = {**event.data, "delta": {"type": "text_delta", "text": text}}
            events[i] = dataclasses.replace(event, data=data)
            break
    return dataclasses.replace(response, events=tuple(events))
"""


def streamed(n: int) -> bool:
    """Whether recording ``n`` (and its replay) is a stream: every other one."""
    return n // len(KINDS) % 2 == 1


def body(n: int, size: int, kind: str) -> dict[str, Any]:
    """A distinct request of about ``size`` bytes, asking ``hello KIND`` (the stand-in
    upstream answers the last user message: its answers stay small; a recording's is made
    ``size`` by the hook). A replay asks what recording ``n`` asked."""
    question = "hello hit" if kind == "hit" else f"hello {kind} {n}"
    if kind == "replay":
        question = f"hello record {n}"
    sent = {
        "model": cassettes.MODEL,
        "max_tokens": 64,
        "system": f"{kind} {n:07d} " + "x" * (size - 64),
        "messages": [{"role": "user", "content": question}],
    }
    if kind in ("record", "replay") and streamed(n):
        sent["stream"] = True
    return sent


def _hits() -> dict[str, Any]:
    request = body(0, 64, "hit")
    del request["system"]
    return {
        "request": {"method": "POST", "path": "/v1/messages", "body": request},
        "response": {
            "status": 200,
            "headers": {"content-type": "application/json"},
            "body": {
                "id": "msg_hit",
                "type": "message",
                "role": "assistant",
                "model": cassettes.MODEL,
                "content": [{"type": "text", "text": "replayed"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
    }


def _request(server: Server, n: int, size: int, kind: str) -> bytes:
    headers = {"x-tapedeck-test-id": f"memory-{n}", "x-api-key": "sk-ant-api03-MEMTEST"}
    if kind == "miss":  # a cassette recorded before this run: --mode once only replays it
        headers["x-tapedeck-test-cassette"] = "hits"
    elif kind == "record":
        headers["x-tapedeck-test-cassette"] = f"recorded/r{n:07d}"
    # A replay names no cassette: --mode once would record again into one made this run.
    return rawhttp.request(
        server.host, server.port, "POST", "/v1/messages", body(n, size, kind), headers
    )


async def _send(
    server: Server,
    numbers: list[int],
    size: int,
    statuses: dict[str, list[int]],
    stop_kb: int | None = None,
    idle_kb: int = 0,
    replays: bool = False,
) -> int:
    """Send requests ``numbers`` (kinds in turn; with ``replays``, the replay of each
    recording among them); return how many went (a server that grew past ``stop_kb`` gets
    no more). A replay that is not the whole recorded answer counts as status 0."""
    queue = iter(n for n in numbers if not replays or KINDS[n % len(KINDS)] == "record")
    sent = 0

    async def worker() -> None:
        nonlocal sent
        for n in queue:
            if stop_kb is not None and server.rss_kb() - idle_kb > stop_kb:
                return
            kind = "replay" if replays else KINDS[n % len(KINDS)]
            raw = _request(server, n, size, kind)
            response = await rawhttp.exchange(server.host, server.port, raw, wait_s=60)
            whole = kind != "replay" or response.body.count(b"y" * 1024) >= size // 1024
            statuses[kind].append(response.status if whole else 0)
            sent += 1

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return sent


def measure(
    root: Path, count: int, size: int, extra: list[str], src: Path | None, stop_mb: int | None
) -> dict[str, Any]:
    deck = root / "deck"
    with FakeUpstream() as fake:
        args = [
            *("--cassettes", str(deck), "--mode", "once", "--upstream", fake.base_url),
            *("--timing", "instant", "--ignore-body-fields", "system"),
            *("--journal-body-limit", "2MiB", "--max-body-size", "8MiB", "--index-cache", "off"),
            *("--before-record-response", "memory_hook:large_answer"),
            *extra,
        ]
        with Server(args, src, cwd=root) as server:
            warm = list(range(count, count + WARM_UP))
            rawhttp.run(_send(server, warm, size, _by_kind()))
            rawhttp.run(_send(server, warm, size, _by_kind(), replays=True))
            fake.reset()  # it keeps every request it saw
            idle = server.rss_kb()
            statuses = _by_kind()
            started = time.perf_counter()
            stop = None if stop_mb is None else stop_mb * 1024
            sent = rawhttp.run(_send(server, list(range(count)), size, statuses, stop, idle))
            recorded_kb = server.rss_kb() - idle
            if sent == count:
                sent += rawhttp.run(
                    _send(server, list(range(count)), size, statuses, stop, idle, replays=True)
                )
            seconds = time.perf_counter() - started
            grown = server.rss_kb() - idle
            fake.reset()
            lines = server.stop()
    recorded = [p for p in (deck / "recorded").rglob("*") if p.is_file()]
    written = sum(p.stat().st_size for p in recorded)
    for path in recorded:
        path.unlink()
    return {
        "grown_kb": grown,
        "recorded_kb": recorded_kb,
        "sent": sent,
        "seconds": seconds,
        "statuses": statuses,
        "written": written,
        "tracebacks": len(tracebacks(lines)),
    }


def _by_kind() -> dict[str, list[int]]:
    return {kind: [] for kind in (*KINDS, "replay")}


def run(full: bool, src: Path | None = None, before: Path | None = None) -> Outcome:
    count, size, bound = (
        (FULL_REQUESTS, FULL_BODY, FULL_BOUND_MB)
        if full
        else (SHORT_REQUESTS, SHORT_BODY, SHORT_BOUND_MB)
    )
    outcome = Outcome("memory")
    started = time.perf_counter()
    records = sum(1 for n in range(count) if KINDS[n % len(KINDS)] == "record")
    outcome.figure(
        "distinct requests (hits, misses, recordings; then replays)",
        f"{count:,} + {records:,} x {size / MB:g} MB, answers recorded at {size / MB:g} MB",
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cassettes.write(root / "deck", "hits", [_hits()])
        (root / "memory_hook.py").write_text(HOOK % size)
        short = [] if full else ["--journal-max-bytes", SHORT_JOURNAL_BYTES]
        short += [] if full else ["--library-max-bytes", SHORT_LIBRARY_BYTES]
        short += [] if full else ["--library-request-max-bytes", SHORT_LIBRARY_BYTES]
        runs: list[tuple[str, Path | None, list[str], int | None]] = [("after", src, short, None)]
        if before is not None:
            runs.append(("before", before, [], BEFORE_STOP_MB))
        for label, tree, extra, stop in runs:
            m = measure(root, count, size, extra, tree, stop)
            grown_mb = m["grown_kb"] / 1024
            outcome.figure(
                f"{label}: RSS growth",
                f"{m['recorded_kb'] / 1024:,.1f} MB after the {count:,} requests, "
                f"{grown_mb:,.1f} MB after {m['sent']:,} requests with the replays"
                + (" (stopped early)" if m["sent"] < count + records else ""),
            )
            outcome.figure(f"{label}: recordings on disk", f"{m['written'] / MB:,.1f} MB")
            codes = {k: sorted(set(v)) for k, v in m["statuses"].items()}
            outcome.figure(f"{label}: statuses", ", ".join(f"{k} {v}" for k, v in codes.items()))
            outcome.check(not m["tracebacks"], f"{label}: tracebacks in the log")
            if label == "after":
                outcome.check(grown_mb < bound, f"RSS grew {grown_mb:,.1f} MB (bound {bound} MB)")
                outcome.check(
                    codes == {"hit": [200], "miss": [404], "record": [200], "replay": [200]},
                    f"unexpected statuses {codes}",
                )
    outcome.seconds = time.perf_counter() - started
    return outcome
