"""Logging: one start line, one line per request, nothing secret.

Request lines never include headers or bodies, so keys and auth headers cannot leak
into logs. Deliberate connection drops are not errors and are kept out of uvicorn's log.
"""

from __future__ import annotations

import logging
import sys
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .responses import StreamCut

log = logging.getLogger("tapedeck")
_LINE = "%s %s %s %s %.1fms%s"


class _HideDeliberateCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCut)


def configure_logging(level: int = logging.INFO) -> None:
    """Send tapedeck's log to stderr and quiet uvicorn's own start-up chatter."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
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


def note(scope: Scope, text: str) -> None:
    """Attach what the request log line should say about this request (cassette or miss)."""
    scope.setdefault("state", {})["tapedeck.note"] = text


class RequestLog:
    """ASGI middleware writing one line per request: method, path, status, note, duration."""

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

        ending = ""
        try:
            await self.app(scope, receive, send_and_watch)
        except StreamCut:
            ending = " (connection cut as recorded)"
            raise
        finally:
            state = scope.get("state", {})
            what = state.get("tapedeck.note", "-")
            if state.get("tapedeck.client_left"):
                ending = " (client went away)"
            ms = (time.perf_counter() - started) * 1000
            if log.isEnabledFor(logging.INFO):
                # makeRecord directly: logging's search for the caller's frame would be
                # the largest single cost of a replayed response.
                args = (scope["method"], scope["path"], status or "-", what, ms, ending)
                log.handle(
                    log.makeRecord(
                        log.name, logging.INFO, __file__, 0, _LINE, args, None, "__call__"
                    )
                )
