"""Logging: one start line, one line per request, nothing secret.

Request lines never include headers or bodies, so keys and auth headers cannot leak
into logs. Deliberate connection drops are not errors and are kept out of uvicorn's log.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import time
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import StreamCut
from ..platforms.door import PLATFORM
from ..record.redact import redact_text

log = logging.getLogger("tapedeck")
#: Where an admin route's error says what the request log line should say.
SAID = "tapedeck.said"


class _Formatter(logging.Formatter):
    """``HH:MM:SS message``, formatting the time once per second rather than per line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        """``HH:MM:SS`` for a ``time.time()`` reading."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%H:%M:%S", time.localtime(second))
        return self._stamp


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes lines in batches: at most ``interval`` seconds late,
    at once for warnings and errors, and on close (logging flushes at interpreter exit).

    One write per request line would cost a replayed response a third of its time.
    """

    def __init__(self, stream: TextIO, interval: float = 0.05) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._interval = interval
        self._start_flushing()
        # A worker process (``--workers``) is forked: it needs a flushing thread of its own,
        # and must not write again what the parent had queued.
        os.register_at_fork(after_in_child=self._after_fork)

    def _start_flushing(self) -> None:
        threading.Thread(target=self._flush_often, name="tapedeck-log", daemon=True).start()

    def _after_fork(self) -> None:
        self._pending = []
        self._start_flushing()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._pending) >= 1024:
            self.flush()

    def line(self, message: str) -> None:
        """Queue one INFO line as :meth:`emit` would write it, without a ``LogRecord``."""
        formatter = self.formatter
        stamp = formatter.stamp(time.time()) if isinstance(formatter, _Formatter) else ""
        self._pending.append(f"{stamp} {message}{self.terminator}")
        if len(self._pending) >= 1024:
            self.flush()

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                self.stream.write(text)
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()

    def _flush_often(self) -> None:
        while True:
            time.sleep(self._interval)
            if self._pending:
                self.flush()


class _HideDeliberateCuts(logging.Filter):
    """Deliberate drops are not errors; malformed requests get tapedeck's own line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCut) and record.msg != "Invalid HTTP request received."


def configure_logging(level: int = logging.INFO) -> None:
    """Send tapedeck's log to stderr and quiet uvicorn's own start-up chatter."""
    if not log.handlers:
        handler = BatchedStreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(level)
    install_cut_filter()
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def install_cut_filter() -> None:
    """Keep deliberate mid-stream drops (:class:`StreamCut`) out of uvicorn's error log."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDeliberateCuts) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_HideDeliberateCuts())


def log_request(
    scope: Scope,
    status: int,
    said: str,
    started: float,
    cut: bool = False,
    left: bool = False,
    slow: str = "",
    path: str | None = None,
) -> None:
    """Write the request's log line: method, path (redacted: ``path``, else the scope's
    with keys replaced), status, what answered it (``said``), duration, how it ended
    (``slow``: why the client was cut for not reading)."""
    if not log.isEnabledFor(logging.INFO):
        return
    if slow:
        ending = f" ({slow})"
    else:
        ending = " (client went away)" if left else " (connection cut as recorded)" if cut else ""
    ms = (time.perf_counter() - started) * 1000
    method = scope["method"]
    platform = scope.get(PLATFORM)
    key = (method, scope["path"] if path is None else path, status, said, platform, path is None)
    head = _heads.get(key)
    if head is None:
        head = _head(*key)
    queue = _queue()
    if queue is not None:  # _LINE, formatted in one step
        queue.line(f"{head} {ms:.1f}ms{ending}")
    else:
        info("%s %.1fms%s", head, ms, ending)


#: A request line's text before its duration, by what it is made of: the same few, request
#: after request. At most :data:`_HEADS` of them, each of texts up to :data:`_SHORT` long.
_heads: dict[tuple[str, str, int, str, tuple[str, str] | None, bool], str] = {}
_HEADS = 1024


def _head(
    method: str,
    path: str,
    status: int,
    said: str,
    platform: tuple[str, str] | None,
    raw: bool,
) -> str:
    """The line's text before the duration (``raw``: ``path`` is not redacted yet)."""
    seen = shown(redact_text(path) if raw else path)
    if platform is not None:  # the path the client sent, then what it was served as
        seen = f"{shown(redact_text(platform[1]))} ({platform[0]}: {seen})"
    head = f"{method} {seen} {status or '-'} {shown(said) or '-'}"
    short = len(path) <= _SHORT and len(said) <= _SHORT
    if short and len(_heads) < _HEADS and (platform is None or len(platform[1]) <= _SHORT):
        _heads[(method, path, status, said, platform, raw)] = head
    return head


def called(scope: Scope) -> tuple[str, str] | None:
    """For a platform client's request: its platform and the path it sent (redacted)."""
    platform: tuple[str, str] | None = scope.get(PLATFORM)
    return None if platform is None else (platform[0], redact_text(platform[1]))


def shown(text: str) -> str:
    """``text`` as it may go in the log: key-shaped strings redacted, control characters
    (a line break in a percent-encoded path could forge a log line) escaped."""
    return _shown_short(text) if len(text) <= _SHORT else _shown(text)


#: Texts up to this long are shown from a cache: a request line's path and what answered
#: it are the same few, request after request (1,024 of them: at most about 0.5 MB).
_SHORT = 256


@functools.lru_cache(maxsize=1024)
def _shown_short(text: str) -> str:
    return _shown(text)


def _shown(text: str) -> str:
    text = redact_text(text)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text


def info(message: str, *args: object) -> None:
    """Log one INFO line (``message % args``) as cheaply as it can be done: a line is
    written once per request, and would otherwise cost a replayed response a third of
    its time."""
    queue = _queue()
    if queue is not None:
        queue.line(message % args)
    elif log.isEnabledFor(logging.INFO):
        # makeRecord directly: logging's search for the caller's frame costs more than
        # the rest of a replayed response.
        log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, message, args, None, None))


def _queue() -> BatchedStreamHandler | None:
    """tapedeck's own handler, if it is all that would see a request line: then the line
    is queued as text. A ``LogRecord`` costs a replayed response a third of its time, and
    only matters to other handlers (pytest's log capture, an embedding program's)."""
    handlers = log.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        type(handler) is not BatchedStreamHandler
        or log.propagate
        or log.filters
        or handler.filters
        or handler.level > logging.INFO
    ):
        return None
    return handler


class RequestLog:
    """ASGI middleware writing one line per request (see :func:`log_request`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            log_request(scope, status, scope.get("state", {}).get(SAID, ""), started)
