"""Clients that open a large stream and never read it: the server's memory stays bounded
(at most ``max_client_buffer`` waits for each) and, after ``write_timeout``, they are cut
and their connections closed.

With ``--before SRC`` the same clients are sent to another tapedeck version too, in the
same run (a version without the bound keeps every unread byte).
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

from . import cassettes, rawhttp
from .outcome import Outcome
from .proc import OtherLoad, Server, tracebacks

#: (clients, deltas of 2 kB, timings, write_timeout): streams large enough that the
#: kernel's socket buffers cannot take them whole.
SHORT = (25, 3000, ("instant",), 1.5)
FULL = (200, 2500, ("instant", "fixed=1"), 3.0)
BUFFER_KB = 256
#: A version without the bound is watched until its RSS has grown by no more than
#: PLATEAU_KB for PLATEAU_S seconds, or for PLATEAU_CAP_S at most.
PLATEAU_KB, PLATEAU_S, PLATEAU_CAP_S = 1024, 4.0, 90.0


def _clients(server: Server, count: int, timing: str) -> list[socket.socket]:
    raw = rawhttp.request(
        server.host,
        server.port,
        "POST",
        "/v1/messages",
        cassettes.ask("big"),
        {"x-tapedeck-timing": timing},
    )
    opened = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((server.host, server.port))
        sock.sendall(raw)
        opened.append(sock)
    return opened


def measure(
    root: Path, count: int, timing: str, write_timeout: float, src: Path | None, bounded: bool
) -> dict[str, int | float]:
    """Peak RSS growth over idle (kB), fds while the clients hang on and after, cuts."""
    args = ["--cassettes", str(root)]
    if bounded:
        args += ["--write-timeout", str(write_timeout), "--max-client-buffer", f"{BUFFER_KB}KiB"]
    with Server(args, src) as server:
        health = rawhttp.request(server.host, server.port, "GET", "/_tapedeck/health")
        rawhttp.run(rawhttp.exchange(server.host, server.port, health))  # serving, fds open
        idle = server.rss_kb()
        fds_idle = server.fds()
        clients = _clients(server, count, timing)
        peak, fds_peak = idle, 0
        # Cuts come write_timeout after a client's buffer fills, which the kernel's socket
        # buffers delay: wait for all. A version without the bound cuts nobody: watch it
        # until its memory stops growing (it has queued all it will), which at a timing
        # with gaps takes far longer than the cuts do.
        started = time.monotonic()
        deadline = started + (write_timeout + 15 if bounded else PLATEAU_CAP_S)
        grew_at, mark = started, idle
        while time.monotonic() < deadline:
            rss = server.rss_kb()
            if rss > mark + PLATEAU_KB:
                grew_at, mark = time.monotonic(), rss
            peak, fds_peak = max(peak, rss), max(fds_peak, server.fds())
            if bounded and len(server.matching("client too slow")) >= count:
                break
            if not bounded and time.monotonic() - grew_at > PLATEAU_S:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        fds_hanging = server.fds()  # the clients are still connected, reading nothing
        cut = len(server.matching("client too slow"))
        for sock in clients:
            sock.close()
        time.sleep(1)
        lines = server.stop()
    return {
        "idle": idle,
        "growth": peak - idle,
        "fds_idle": fds_idle,
        "fds_peak": fds_peak,
        "fds_hanging": fds_hanging,
        "cut": cut,
        "tracebacks": len(tracebacks(lines)),
    }


def run(full: bool, src: Path | None = None, before: Path | None = None) -> Outcome:
    count, deltas, timings, write_timeout = FULL if full else SHORT
    outcome = Outcome("slow_readers")
    started = time.perf_counter()
    events = cassettes.message_events(["x" * 2000] * deltas, 0.01)
    size = len(cassettes.wire_bytes(events))
    outcome.figure("clients that never read", count)
    outcome.figure("stream size", f"{size / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cassettes.write(root, "big", [cassettes.streamed("big", events)])
        load = OtherLoad()
        for timing in timings:
            versions = [("after", src, True)] + ([("before", before, False)] if before else [])
            for label, tree, bounded in versions:
                m = measure(root, count, timing, write_timeout, tree, bounded)
                outcome.figure(
                    f"{timing}: {label}: peak RSS growth",
                    f"{m['growth'] / 1024:,.0f} MB ({m['growth'] / count:,.0f} kB per client, "
                    "the stream's plan included)",
                )
                outcome.figure(
                    f"{timing}: {label}: fds idle/peak/clients still connected",
                    f"{m['fds_idle']} / {m['fds_peak']} / {m['fds_hanging']}",
                )
                if not bounded:
                    continue
                outcome.figure(
                    f"{timing}: {label}: clients cut after {write_timeout:g} s", m["cut"]
                )
                limit = count * (BUFFER_KB + 128) + 64 * 1024  # buffer, a piece, the plan
                outcome.check(
                    m["growth"] <= limit,
                    f"{timing}: RSS grew {m['growth']:,} kB for {count} clients (limit {limit:,})",
                )
                outcome.check(m["cut"] == count, f"{timing}: {m['cut']} of {count} cut")
                outcome.check(
                    m["fds_hanging"] <= m["fds_idle"] + 2,
                    f"{timing}: {m['fds_hanging']} fds open after the cut",
                )
                outcome.check(not m["tracebacks"], f"{timing}: tracebacks in the log")
        other = load.cores()
    if other is not None and other > 0.3:
        outcome.notes.append(f"other processes used {other:.1f} cores meanwhile")
    outcome.seconds = time.perf_counter() - started
    return outcome
