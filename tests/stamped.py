"""Timing measured where a loaded machine cannot distort it.

:func:`exchange` sends one HTTP/1.1 request over a plain socket and stamps every read with
the kernel's receive time (``SO_TIMESTAMPNS``, as ``bench/loadgen.py`` does): when the bytes
reached this socket, which on loopback is when the server wrote them, however late this
process gets round to reading them. Times are ``time.time()`` seconds: the kernel stamps are
on the same clock (``CLOCK_REALTIME``), and so are the stand-in upstream's own
(:class:`fake_upstream.Seen`).

:class:`Serve` runs ``tapedeck serve`` in a process of its own, so that the test's own
threads (its client, a stand-in upstream) cannot hold up the server's timers.

:func:`paced_as` checks a response's times against when the server is due to send each
part. A server cannot send a part before it is due, however loaded the machine: every run
must be on time or late, never early (by more than a timer's resolution). Lateness only
adds: the best of a few runs must come close to the due times, and a run that came late is
simply run again (up to :data:`RUNS` times) before the check gives up.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

#: SO_TIMESTAMPNS (SCM_TIMESTAMPNS) is 35 on Linux x86 and arm; Python has no constant for it.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_KERNEL_STAMPS = sys.platform.startswith("linux") and struct.calcsize("q") == 8
_CMSG_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0

#: How much earlier than due a part may arrive: the event loop's timers have a resolution
#: of a millisecond (uvloop), and the clock is read on both sides.
EARLY_MS = 5.0
#: The best of the runs must come within ``due * LATE_RATIO + LATE_MS``.
LATE_RATIO = 1.25
LATE_MS = 20.0
#: Runs before a check that the best of them is on time gives up.
RUNS = 6
#: A run during which the wall clock moved this much against the monotonic one does not
#: count (the kernel's stamps are wall-clock times).
CLOCK_STEP_MS = 2.0


@dataclass
class Exchange:
    """One request and its response, with when each part arrived (``time.time()``)."""

    #: Just before the request was written to the socket.
    sent: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    #: The read that completed the response headers.
    head: float = math.nan
    #: Each server-sent event (its ``event:`` name) and the read that completed it.
    events: list[tuple[str, float]] = field(default_factory=list)
    #: The read that completed the body (the last chunk, or the last byte of its length).
    end: float = math.nan
    body: bytes = b""
    #: A chunked body's chunks as framed on the wire, each with the read that completed it.
    chunks: list[tuple[bytes, float]] = field(default_factory=list)
    #: Whether every read carried the kernel's receive time (else: when it was read).
    kernel: bool = True
    #: How far the wall clock moved against the monotonic one meanwhile (a step of the
    #: system time; slewing moves it by well under a millisecond a second).
    clock_moved_ms: float = 0.0

    def ms(self, at: float) -> float:
        """``at`` in milliseconds after the request was sent."""
        return (at - self.sent) * 1000

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def timeline(self) -> list[float]:
        """Milliseconds after sending: the headers, each event, the end of the body."""
        return [self.ms(self.head), *(self.ms(at) for _, at in self.events), self.ms(self.end)]

    def data(self) -> list[tuple[str, Any]]:
        """Each event's name and its ``data:`` as JSON."""
        out = []
        for block in self.body.split(b"\n\n")[:-1]:
            fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
            out.append((fields["event"], json.loads(fields["data"])))
        return out


class _Reader:
    """Parses a response as it arrives; every completed part takes the current read's time."""

    def __init__(self, result: Exchange) -> None:
        self.result = result
        self.buffer = b""
        self.head_done = False
        self.chunked = False
        self.length: int | None = None
        self.done = False
        self.sse = False
        self.pending = b""  # decoded body not yet split into events

    def feed(self, data: bytes, at: float) -> None:
        self.buffer += data
        if not self.head_done:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.head_done = True
            self.buffer = rest
            lines = head.decode("latin-1").split("\r\n")
            self.result.status = int(lines[0].split(" ")[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.result.headers[name.strip().lower()] = value.strip()
            self.result.head = at
            headers = self.result.headers
            self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            self.length = int(headers["content-length"]) if "content-length" in headers else None
            self.sse = headers.get("content-type", "").startswith("text/event-stream")
        if self.chunked:
            self._chunks(at)
        else:
            self._body(self.buffer, at)
            self.buffer = b""
            if self.length is not None and len(self.result.body) >= self.length:
                self._end(at)

    def _chunks(self, at: float) -> None:
        while not self.done:
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if size == 0:
                if rest.startswith(b"\r\n"):
                    self._end(at)
                return
            if len(rest) < size + 2:
                return
            self.result.chunks.append((rest[:size], at))
            self._body(rest[:size], at)
            self.buffer = rest[size + 2 :]

    def _body(self, data: bytes, at: float) -> None:
        self.result.body += data
        if not self.sse:
            return
        self.pending += data
        while b"\n\n" in self.pending:
            block, _, self.pending = self.pending.partition(b"\n\n")
            found = re.search(rb"^event: ?(.*)$", block, re.MULTILINE)
            self.result.events.append((found.group(1).decode() if found else "", at))

    def _end(self, at: float) -> None:
        self.result.end = at
        self.done = True

    def eof(self, at: float) -> None:
        if self.head_done and not self.chunked and self.length is None:
            self._end(at)


def exchange(
    base_url: str,
    path: str = "/v1/messages",
    body: Any = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    timeout: float = 30.0,
) -> Exchange:
    """Send one request (``Connection: close``) and read the whole response, stamping each
    part with the kernel's receive time of the read that completed it."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    raw = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines.append("anthropic-version: 2023-06-01")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(raw)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + raw
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kernel = _KERNEL_STAMPS and _CMSG_SPACE > 0
        if kernel:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            except OSError:
                kernel = False
        offset = time.time() - time.monotonic()
        result = Exchange(sent=time.time(), kernel=kernel)
        sock.sendall(request)
        reader = _Reader(result)
        while not reader.done:
            data, ancillary, _, _ = sock.recvmsg(65536, _CMSG_SPACE if kernel else 0)
            at = time.time()
            stamped = False
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", payload[:16])
                    at = seconds + nanoseconds / 1e9
                    stamped = True
            if not data:
                reader.eof(at)
                break
            result.kernel = result.kernel and stamped
            reader.feed(data, at)
    assert reader.done, f"the response ended early: {result.body[-200:]!r}"
    result.clock_moved_ms = abs(time.time() - time.monotonic() - offset) * 1000
    return result


# --- when a response is due -------------------------------------------------------------------


def limit(due_ms: float) -> float:
    """The latest the best of the runs may be, for a part due at ``due_ms``."""
    return due_ms * LATE_RATIO + LATE_MS


def paced_as(
    measure: Callable[[], Exchange], due_ms: Sequence[float], runs: int = RUNS
) -> list[Exchange]:
    """Run ``measure`` until the best of its runs is on time; return every run.

    ``due_ms`` is when each part of :meth:`Exchange.timeline` is due, in milliseconds after
    the request was sent (the headers, each event, the end). In every run no part may come
    earlier than due (less :data:`EARLY_MS`); the best time of each part over the runs must
    be within :func:`limit` of its due time. Lateness is the machine's (a run that came late
    is run again); earliness is the server's, and fails at once. A run during which the
    system time was set does not count."""
    seen: list[Exchange] = []
    best = [math.inf] * len(due_ms)
    for _ in range(runs):
        run = measure()
        seen.append(run)
        if run.clock_moved_ms > CLOCK_STEP_MS:  # the system time was set: measure again
            continue
        got = run.timeline()
        assert len(got) == len(due_ms), (run.names, list(due_ms))
        early = [
            f"part {i}: at {g:.1f} ms, due {d:.1f} ms"
            for i, (g, d) in enumerate(zip(got, due_ms, strict=True))
            if g < d - EARLY_MS
        ]
        assert not early, f"sent before due: {early}; every part {fmt(got)}, due {fmt(due_ms)}"
        best = [min(b, g) for b, g in zip(best, got, strict=True)]
        if all(b <= limit(d) for b, d in zip(best, due_ms, strict=True)):
            return seen
    assert not all(math.isinf(b) for b in best), "the system time was set during every run"
    late = [
        f"part {i}: at best {b:.1f} ms, due {d:.1f} ms (limit {limit(d):.1f})"
        for i, (b, d) in enumerate(zip(best, due_ms, strict=True))
        if b > limit(d)
    ]
    raise AssertionError(f"later than due in each of {runs} runs: {late}")


def fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"


# --- tapedeck in a process of its own ---------------------------------------------------------

_START = re.compile(r" on (http://127\.0\.0\.1:\d+)")


class Serve:
    """``tapedeck serve --cassettes DIR FLAGS...`` on a free loopback port, in its own
    process; its log goes to a file (:meth:`output`). Use as a context manager, or
    :func:`serving` to start several at once."""

    def __init__(self, cassettes: Path, *flags: str) -> None:
        exe = Path(sys.executable).with_name("tapedeck")
        self.cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tapedeck"]
        self.cmd += ["serve", "--cassettes", str(cassettes), "--host", "127.0.0.1"]
        self.cmd += ["--port", "0", *flags]
        self.cwd = cassettes if cassettes.is_dir() else cassettes.parent
        self._dir = Path(tempfile.mkdtemp(prefix="tapedeck-serve-"))
        self.log = self._dir / "serve.log"
        self.base_url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> Serve:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=self.cwd
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> Serve:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self.base_url:
            found = _START.search(self.output())
            if found:
                self.base_url = found.group(1)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.output()
                self.stop()
                raise RuntimeError(f"tapedeck serve did not start:\n{text[-3000:]}")
            time.sleep(0.02)
        httpx.get(self.base_url + "/_tapedeck/health", timeout=timeout).raise_for_status()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Serve:
        return self.launch().wait_ready()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def serving(*servers: Serve) -> Iterator[tuple[Serve, ...]]:
    """Start ``servers`` side by side (their start-ups overlap), stop them all after."""
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
