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
import os
import resource
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from stream_bytes import load

# Parser states.
_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _DONE = range(7)

# Kernel receive timestamps: SO_TIMESTAMPNS (SCM_TIMESTAMPNS) is 35 on Linux x86 and arm;
# Python 3.11 has no constant for it. The payload is a struct timespec (CLOCK_REALTIME).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_KERNEL_STAMPS = sys.platform.startswith("linux") and struct.calcsize("q") == 8
_CMSG_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int] | None:
    """Busy and total CPU time of the whole machine so far (``/proc/stat`` ticks), or None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])  # guest time is already part of user time
    return total - fields[3] - fields[4], total


class Usage:
    """CPU use over a window: this process, the server, and the machine as a whole."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = (time.perf_counter(), time.process_time(), cpu_seconds(server_pid))
        self.machine = machine_busy()

    def result(self) -> dict[str, float | None]:
        wall, cpu, server = time.perf_counter(), time.process_time(), cpu_seconds(self.server_pid)
        machine = machine_busy()
        elapsed = wall - self.start[0]
        out: dict[str, float | None] = {
            "client_cpu": (cpu - self.start[1]) / elapsed,
            "server_cpu": None,
            "machine_busy_cores": None,
            "other_cores": None,
        }
        if server is not None and self.start[2] is not None:
            out["server_cpu"] = (server - self.start[2]) / elapsed
        if machine and self.machine and machine[1] > self.machine[1]:
            busy = (machine[0] - self.machine[0]) / (machine[1] - self.machine[1])
            out["machine_busy_cores"] = busy * (os.cpu_count() or 1)
            if out["server_cpu"] is not None:
                # What neither the server nor this client used: other processes, mostly.
                # (Interrupt time for loopback traffic may land here too, so it is rarely 0.)
                out["other_cores"] = max(
                    0.0, out["machine_busy_cores"] - out["server_cpu"] - out["client_cpu"]
                )
        return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class Job:
    """What the connections of one run share: the request, the expected body, counters."""

    def __init__(self, request: bytes, expected: bytes, stamp: bool) -> None:
        self.request = request
        self.expected = expected
        self.stamp = stamp
        self.running = True
        self.completed = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.latencies: list[float] = []
        self.idle = asyncio.get_running_loop().create_future()
        self.busy = 0

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)


class Conn:
    """One keep-alive connection's response parser; ``feed`` it bytes as they arrive."""

    def __init__(self, job: Job, repeat: bool) -> None:
        self.job = job
        self.repeat = repeat
        self.write: Callable[[bytes], None] | None = None
        self.close: Callable[[], None] | None = None
        self.buf = bytearray()
        self.body = bytearray()
        self.times: list[float] = []  # perf_counter() of the read completing each event
        self.ktimes: list[float] = []  # the kernel's receive time of that read
        self.scan = 0
        self.state = _DONE
        self.remaining = 0
        self.sent_at = 0.0
        self.closed = False

    def send(self) -> None:
        assert self.write is not None
        self.buf.clear()
        self.body = bytearray()
        self.times = []
        self.ktimes = []
        self.scan = 0
        self.state = _HEAD
        self.sent_at = time.perf_counter()
        self.job.busy += 1
        self.write(self.job.request)

    def lost(self, why: str) -> None:
        self.closed = True
        if self.state != _DONE:
            self.state = _DONE
            self.job.error(f"connection lost mid-response ({why})")
            self._release()

    def feed(self, data: bytes, now: float, kernel: float) -> None:
        buf = self.buf
        buf += data
        while buf:
            state = self.state
            if state in (_DATA, _LENGTH):
                take = min(self.remaining, len(buf))
                self.body += buf[:take]
                del buf[:take]
                self.remaining -= take
                if self.job.stamp:
                    self._stamp(now, kernel)
                if self.remaining == 0:
                    if state == _LENGTH:
                        self._finish(now)
                    else:
                        self.state = _DATA_END
            elif state == _SIZE:
                nl = buf.find(b"\r\n")
                if nl < 0:
                    return
                try:
                    size = int(bytes(buf[:nl]).split(b";", 1)[0], 16)
                except ValueError:
                    self._fail(f"bad chunk size line {bytes(buf[:nl])[:40]!r}")
                    return
                del buf[: nl + 2]
                self.remaining = size
                self.state = _DATA if size else _TRAILER
            elif state in (_DATA_END, _TRAILER):
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    self._fail("chunk not followed by CRLF (or a trailer was sent)")
                    return
                del buf[:2]
                if state == _TRAILER:
                    self._finish(now)
                else:
                    self.state = _SIZE
            elif state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                del buf[: end + 4]
                if not head.startswith(b"http/1.1 200 "):
                    status = head.split(b"\r\n", 1)[0][:60]
                    self._fail(f"status line {status!r}")
                    return
                if b"\r\ntransfer-encoding: chunked" in head:
                    self.state = _SIZE
                elif b"\r\ncontent-length:" in head:
                    start = head.index(b"\r\ncontent-length:") + 17
                    self.remaining = int(head[start:].split(b"\r\n", 1)[0])
                    self.state = _LENGTH
                else:
                    self._fail("response has neither chunked encoding nor a content-length")
                    return
            else:
                self._fail(f"{len(buf)} unexpected bytes after a response")
                return

    def _stamp(self, now: float, kernel: float) -> None:
        body = self.body
        i = body.find(b"\n\n", self.scan)
        while i >= 0:
            self.times.append(now)
            self.ktimes.append(kernel)
            self.scan = i + 2
            i = body.find(b"\n\n", self.scan)

    def _fail(self, text: str) -> None:
        self.job.error(text)
        self.state = _DONE
        self._release()
        if self.close is not None:
            self.close()

    def _release(self) -> None:
        job = self.job
        job.busy -= 1
        if job.busy == 0 and not job.running and not job.idle.done():
            job.idle.set_result(None)

    def _finish(self, now: float) -> None:
        job = self.job
        self.state = _DONE
        if self.body == job.expected:
            job.completed += 1
            job.latencies.append(now - self.sent_at)
        else:
            job.error(f"body differs: {len(self.body)} bytes, expected {len(job.expected)}")
        if self.repeat and job.running and not self.closed:
            job.busy -= 1
            self.send()
        else:
            self._release()


class ConnProtocol(asyncio.Protocol):
    """Throughput: a connection driven by the event loop's transport (cheapest reads)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn.write = transport.write  # type: ignore[attr-defined]
        self.conn.close = transport.close

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(repr(exc))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.conn.feed(data, now, now)


class StampedSocket:
    """Timing: a plain non-blocking socket read with ``recvmsg`` to get kernel timestamps."""

    def __init__(self, conn: Conn, host: str, port: int) -> None:
        self.conn = conn
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.kernel = _KERNEL_STAMPS and _CMSG_SPACE > 0
        if self.kernel:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            except OSError:
                self.kernel = False
        self.sock.setblocking(False)
        self.stamped = 0
        conn.write = self.sock.send  # type: ignore[assignment]  # a request fits the buffer
        conn.close = self.shut
        asyncio.get_running_loop().add_reader(self.sock, self.readable)

    def readable(self) -> None:
        conn = self.conn
        for _ in range(64):  # bounded: yield to the loop now and then
            try:
                if self.kernel:
                    data, ancillary, _, _ = self.sock.recvmsg(65536, _CMSG_SPACE)
                else:
                    data, ancillary = self.sock.recv(65536), []
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.shut()
                conn.lost(repr(exc))
                return
            now = time.perf_counter()
            if not data:
                self.shut()
                conn.lost("EOF")
                return
            kernel = now
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", payload[:16])
                    kernel = seconds + nanoseconds / 1e9
                    self.stamped += 1
            conn.feed(data, now, kernel)

    def shut(self) -> None:
        if self.sock.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.sock)
            self.sock.close()


async def throughput(args: argparse.Namespace, request: bytes, expected: bytes) -> dict:
    loop = asyncio.get_running_loop()
    job = Job(request, expected, stamp=False)
    conns: list[Conn] = []
    for _ in range(args.connections):
        conn = Conn(job, repeat=True)
        await loop.create_connection(lambda c=conn: ConnProtocol(c), args.host, args.port)
        conns.append(conn)
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


def gap_errors(conns: list[Conn], at: list[float], kernel: bool) -> dict[str, float]:
    """Percentiles of |(arrival_i - arrival_0) - (at_i - at_0)| in ms, all and after the burst.

    "After the burst" keeps the events due after every stream's first event (plus one gap),
    i.e. once the server has started all N streams.
    """
    series = [c.ktimes if kernel else c.times for c in conns]
    gap = (at[1] - at[0]) / 1000 if len(at) > 1 else 0.0
    last_start = max((t[0] for t in series), default=0.0) + gap
    errors: list[float] = []
    steady: list[float] = []
    for times in series:
        first = times[0]
        for arrival, at_ms in zip(times[1:], at[1:], strict=True):
            due = (at_ms - at[0]) / 1000
            error = abs(arrival - first - due) * 1000
            errors.append(error)
            if first + due > last_start:
                steady.append(error)
    errors.sort()
    steady.sort()
    nan = float("nan")
    return {
        "samples": len(errors),
        "p50": percentile(errors, 50),
        "p99": percentile(errors, 99),
        "max": errors[-1] if errors else nan,
        "steady_samples": len(steady),
        "steady_p50": percentile(steady, 50),
        "steady_p99": percentile(steady, 99),
        "steady_max": steady[-1] if steady else nan,
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
        if c.state != _DONE or len(c.times) != len(at) or c.body != expected:
            if c.state == _DONE and c.body == expected:
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
