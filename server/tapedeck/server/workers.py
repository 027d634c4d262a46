"""Serving from several processes on one port (``tapedeck serve --workers N``).

The parent loads and checks the library and binds the socket once, then forks the
workers: each runs its own uvicorn on the shared listening socket (the kernel spreads
connections among them) with the library it inherited, so a worker starts at once and
the library's memory is shared until written. State that must agree between workers lives
in Redis (:mod:`tapedeck.state`). The parent only supervises: a worker that dies is
replaced, and SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

from .logs import log

#: In a worker process, its number (1 to N); 0 in a server of one process.
number = 0


def supervise(count: int, serve: Callable[[], None], sock: socket.socket) -> None:
    """Run ``serve`` in ``count`` forked worker processes until told to stop."""
    workers: dict[int, int] = {}
    stopping = False

    def start(worker: int) -> None:
        global number
        pid = os.fork()
        if pid == 0:  # the worker
            number = worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                serve()
            except BaseException as exc:  # a worker must never return into the parent's loop
                print(f"tapedeck: worker {worker}: {exc!r}", file=sys.stderr, flush=True)
                code = 1
            finally:
                for handler in log.handlers:
                    handler.flush()
                os._exit(code)
        workers[pid] = worker

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in range(1, count + 1):
            start(worker)
        while workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            gone = workers.pop(pid, 0)
            if gone and not stopping:
                log.warning(
                    "tapedeck: worker %d (pid %d) exited (%s); starting another",
                    gone,
                    pid,
                    _exit_text(status),
                )
                start(gone)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {os.waitstatus_to_exitcode(status)}"
