"""Memory phases of bench/peers.py: the RSS a server adds while it answers (open streams, or
many distinct large requests), sampled every 20 ms, and the big-requests phase itself.

Big requests: N distinct requests of about 1 MB each (the bench request with its user message
made a megabyte long, a counter first), sent over a few keep-alive connections from the
client's CPU. For tapedeck (journal and metrics on, as by default) each is a miss against the
bench library; aimock answers them with its no-match error; the raw app reads the body and
sends the bench stream. What counts is what the server keeps: the peak RSS during the
requests and just after them, minus the RSS after a warm-up.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from peers_tools import progress, rotate
from startup import cpu_seconds, rss_kb

if TYPE_CHECKING:
    from peers_run import Run

MB = 1024 * 1024
SAMPLE_S = 0.02  # how often the RSS is read
AFTER_S = 0.5  # how long it is still sampled after the last answer
CONNECTIONS = 4  # keep-alive connections the big requests share
WARMUP_BIG = 8  # distinct big requests before the RSS is read (buffers, first allocations)


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[Callable[[], dict[str, float]]]:
    """Samples ``pid``'s RSS every 20 ms from entry to exit; the callable gives, once the block
    is left, ``{"idle_mb": RSS at entry, "added_mb": peak - RSS at entry}``."""
    before = rss_kb(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            with contextlib.suppress(OSError, ValueError):
                peak[0] = max(peak[0], rss_kb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: {"idle_mb": before / 1024, "added_mb": (peak[0] - before) / 1024}
    finally:
        done.set()
        sampler.join()
        with contextlib.suppress(OSError, ValueError):
            peak[0] = max(peak[0], rss_kb(pid))


def big_body(request: dict[str, Any], i: int, size: int = MB) -> bytes:
    """``request`` (an Anthropic Messages body) with one user message of ``size`` bytes of JSON
    in all, distinct for each ``i`` (its first characters are ``i``)."""
    head = json.dumps(
        {**request, "messages": [{"role": "user", "content": "@"}]}, separators=(",", ":")
    ).encode()
    before, after = head.split(b"@", 1)
    fill = max(0, size - (len(head) - 1) - 12)  # the counter and a space: 12 bytes
    return b"%s%011d %s%s" % (before, i, b"x" * fill, after)


def send_big(
    port: int, request: dict[str, Any], first: int, count: int, pid: int | None = None
) -> dict[str, Any]:
    """``count`` distinct big requests (numbered from ``first``), over :data:`CONNECTIONS`
    keep-alive connections, each answer read whole; the statuses counted, and with ``pid``
    the server's CPU seconds per request."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for i in range(first + k, first + count, CONNECTIONS):
                try:
                    conn.request("POST", "/v1/messages", big_body(request, i), headers)
                    response = conn.getresponse()
                    response.read()
                    status = str(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # the next request opens a new connection
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
        finally:
            conn.close()

    began, cpu0 = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    cpu = (cpu_seconds(pid) - cpu0) / count if pid and count else None
    return {"statuses": dict(statuses), "seconds": took, "server_cpu_per_request": cpu}


def big_requests(run: Run, kinds: list[str]) -> None:
    """In each of the first ``--big-rounds`` rounds, each of ``kinds`` freshly started: the
    warm-up, then ``--big-requests`` distinct big requests with the RSS sampled."""
    a = run.args
    for r in range(min(a.rounds, a.big_rounds)):
        for kind in rotate(kinds, r):
            if kind in run.problems:
                continue
            progress(f"big requests, {kind}, round {r + 1}: {a.big_requests} x 1 MB")
            with run.guard(kind, "big requests"), run.server(kind, "instant") as srv:
                warm = send_big(srv.port, run.stream.request_body, -WARMUP_BIG, WARMUP_BIG)
                with peak_rss(srv.pid) as measured:
                    sent = send_big(srv.port, run.stream.request_body, 0, a.big_requests, srv.pid)
                    time.sleep(AFTER_S)
                run.results["big"][kind].append(
                    {**measured(), **sent, "warmup_statuses": warm["statuses"]}
                )
