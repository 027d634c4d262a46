"""Load generator for bench/replay.py and bench/peers.py: raw HTTP/1.1 over loopback, one JSON
result on stdout.

Two jobs:

- ``throughput``: C keep-alive connections issue the same request back to back (no
  pipelining); after a warm-up, complete responses are counted for a fixed duration.
- ``timing``: N connections are opened first, then all N requests are written in one go;
  the arrival of every SSE event (the read that completes its blank line) is timestamped
  and compared with the event's recorded ``at_ms``. Each read is stamped twice: with
  ``time.perf_counter()`` when the client gets it, and (on Linux) with the kernel's
  receive time (``SO_TIMESTAMPNS``), which leaves out the client's own scheduling lag.

Every body is decoded (chunked transfer encoding, or a content-length) and compared with
the expected bytes, which also checks the event count and that ``message_stop`` comes
last; anything else counts as an error. Responses are parsed in callbacks, without a
coroutine per read, to keep the client cheap: on a 2-core machine it shares the CPU with
the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

import uvloop

from cpu_use import Usage, cpu_seconds, machine_busy
from gap_error import gap_errors, percentile
from http_conn import DONE, Conn, ConnProtocol, Job
from kernel_stamps import StampedSocket
from stream_bytes import load

__all__ = ["cpu_seconds", "machine_busy"]


async def throughput(args: argparse.Namespace, request: bytes, expected: bytes) -> dict:
    loop = asyncio.get_running_loop()
    job = Job(request, expected, stamp=False)
    conns: list[Conn] = []
    for _ in range(args.connections):
        conn = Conn(job, repeat=True)
        await loop.create_connection(lambda c=conn: ConnProtocol(c), args.host, args.port)
        conns.append(conn)
    if args.cut or args.fresh:
        job.fresh = args.fresh
        reopening: set[asyncio.Task[None]] = set()

        async def reopen_and_send(conn: Conn) -> None:
            conn.closed = False
            try:
                await loop.create_connection(lambda: ConnProtocol(conn), args.host, args.port)
            except OSError as exc:
                job.error(f"cannot reconnect: {exc}")
                job.busy += 1
                conn._release()
                return
            conn.send()

        def reopen(conn: Conn) -> None:
            task = loop.create_task(reopen_and_send(conn))
            reopening.add(task)
            task.add_done_callback(reopening.discard)

        job.reopen = reopen
    for c in conns:
        c.send()
    await asyncio.sleep(args.warmup)
    done0, err0 = job.completed, job.errors
    job.latencies.clear()
    usage = Usage(args.server_pid)
    t0 = time.perf_counter()
    await asyncio.sleep(args.duration)
    done1, err1, t1 = job.completed, job.errors, time.perf_counter()
    cpu = usage.result()
    latencies = sorted(job.latencies)
    job.running = False
    if job.busy:
        try:
            await asyncio.wait_for(asyncio.shield(job.idle), timeout=10)
        except TimeoutError:
            job.error(f"{job.busy} responses still unfinished 10 s after the end")
    for c in conns:
        if c.close is not None:
            c.close()
    elapsed = t1 - t0
    return {
        "job": "throughput",
        "connections": args.connections,
        "duration_s": elapsed,
        "responses": done1 - done0,
        "streams_per_s": (done1 - done0) / elapsed,
        "errors": job.errors,
        "errors_in_window": err1 - err0,
        "error_samples": job.error_samples,
        "latency_ms_p50": percentile(latencies, 50) * 1000,
        "latency_ms_p99": percentile(latencies, 99) * 1000,
        **cpu,
    }


async def timing(
    args: argparse.Namespace, request: bytes, expected: bytes, at: list[float]
) -> dict:
    job = Job(request, expected, stamp=True)
    conns = [Conn(job, repeat=False) for _ in range(args.streams)]
    sockets = [StampedSocket(c, args.host, args.port) for c in conns]
    await asyncio.sleep(0.3)  # let the server accept every connection before the burst
    usage = Usage(args.server_pid)
    t0 = time.perf_counter()
    for c in conns:
        c.send()
    job.running = False
    span = (at[-1] - at[0]) / 1000
    try:
        await asyncio.wait_for(asyncio.shield(job.idle), timeout=span * 3 + 10)
    except TimeoutError:
        job.error(f"{job.busy} streams still unfinished {span * 3 + 10:.0f} s after the start")
    t1 = time.perf_counter()
    cpu = usage.result()
    for s in sockets:
        s.shut()
    good = []
    for c in conns:
        if c.state != DONE or len(c.times) != len(at) or c.body != expected:
            if c.state == DONE and c.body == expected:
                job.error(f"{len(c.times)} events timestamped, expected {len(at)}")
            continue
        good.append(c)
    kernel = bool(sockets) and all(s.stamped for s in sockets)
    firsts = [c.times[0] for c in good]
    ttfb = sorted((c.times[0] - c.sent_at) * 1000 for c in good)
    lag = sorted((t - k) for c in good for t, k in zip(c.times, c.ktimes, strict=True))
    return {
        "job": "timing",
        "streams": args.streams,
        "complete_streams": len(good),
        "events_per_stream": len(at),
        "errors": job.errors,
        "error_samples": job.error_samples,
        "kernel_stamps": kernel,
        "gap_ms": gap_errors(good, at, kernel),
        "gap_ms_client_clock": gap_errors(good, at, False),
        # Only differences of the client lag mean something: the two clocks differ.
        "client_lag_spread_ms_p99": (percentile(lag, 99) - percentile(lag, 50)) * 1000
        if kernel
        else float("nan"),
        "first_event_spread_ms": (max(firsts) - min(firsts)) * 1000 if firsts else float("nan"),
        "ttfb_ms_p50": percentile(ttfb, 50),
        "ttfb_ms_max": ttfb[-1] if ttfb else float("nan"),
        "duration_s": t1 - t0,
        **cpu,
    }


def build_request(body: object, host: str, port: int) -> bytes:
    """The exact request bytes: POST /v1/messages with the cassette's JSON body."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        "POST /v1/messages HTTP/1.1\r\n"
        f"host: {host}:{port}\r\n"
        "content-type: application/json\r\n"
        "accept: text/event-stream\r\n"
        "anthropic-version: 2023-06-01\r\n"
        f"content-length: {len(payload)}\r\n"
        "\r\n"
    )
    return head.encode() + payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", choices=["throughput", "timing"])
    parser.add_argument("--cassette", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument(
        "--expect",
        type=Path,
        help="the expected body, byte for byte, when it is not the cassette's (another server's "
        "rendering of the same stream, or a fault's)",
    )
    parser.add_argument(
        "--cut",
        action="store_true",
        help="responses end with the connection cut (a disconnect fault): a body equal to "
        "--expect counts as complete and the next request goes over a new connection",
    )
    parser.add_argument("--fresh", action="store_true", help="a new connection for every request")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(args.connections, args.streams) + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    stream = load(args.cassette)
    request = build_request(stream.request_body, args.host, args.port)
    expected = args.expect.read_bytes() if args.expect else stream.payload
    if args.job == "throughput":
        result = uvloop.run(throughput(args, request, expected))
    else:
        result = uvloop.run(timing(args, request, expected, stream.at_ms))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
