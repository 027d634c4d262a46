"""The load generator's connections: one request after another over a kept connection, each
response parsed as it arrives (chunked or with a content-length) in callbacks, without a
coroutine per read, and compared with the expected body."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# Parser states.
_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, DONE = range(7)


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
        #: Set when responses are expected to end with the connection cut: opens a new
        #: connection for the given one and sends its next request.
        self.reopen: Callable[[Conn], None] | None = None
        #: Close each connection after one response and go on over a new one.
        self.fresh = False

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
        self.state = DONE
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
        if self.state != DONE:
            self.state = DONE
            job = self.job
            if job.reopen is not None and self.body == job.expected:
                # A response cut as expected (a disconnect fault): count it, then carry on
                # over a new connection, as a client retrying would.
                job.completed += 1
                job.latencies.append(time.perf_counter() - self.sent_at)
                if job.running:
                    job.busy -= 1
                    job.reopen(self)
                    return
            else:
                job.error(f"connection lost mid-response ({why})")
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
        self.state = DONE
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
        self.state = DONE
        if self.body == job.expected:
            job.completed += 1
            job.latencies.append(now - self.sent_at)
        else:
            job.error(f"body differs: {len(self.body)} bytes, expected {len(job.expected)}")
        if self.repeat and job.running and not self.closed and job.fresh:
            # One connection per response (the baseline of a disconnect fault's run).
            self.closed = True
            job.busy -= 1
            assert self.close is not None
            assert job.reopen is not None
            self.close()
            job.reopen(self)
        elif self.repeat and job.running and not self.closed:
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
