"""tapedeck served by several worker processes with Redis state, for running the sequence
and fault tests against it exactly as against one process (``pytest --server-workers N``).

:class:`WorkerServer` runs ``tapedeck serve --workers N --state redis://...`` as a subprocess
and looks like :class:`~tapedeck.server.runner.ServerThread` to the tests: ``base_url``, and
the server's log lines arrive on the ``tapedeck`` logger (from ``_thread``, which
``LogLines.only`` keys on). :class:`RedisServer` is a real ``redis-server`` on a loopback
port of the test run; every server start begins with an empty database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from tapedeck.config.options import BY_KEY
from tapedeck.errors import CassetteError, ConfigError, LibraryError
from tapedeck.shaping.faults import listed

_START = re.compile(r"on (http://127\.0\.0\.1:\d+)")
_STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` on a free loopback port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: the workers tests need it "
                "(Debian: apt-get install redis-server; .ci/run installs it)"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="tapedeck-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        self.client = client

    def flush(self) -> None:
        self.client.flushdb()

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def flags(settings: dict[str, Any]) -> list[str]:
    """``tapedeck serve`` flags for ``Settings`` keywords (as the tests pass them)."""
    out: list[str] = []
    for key, value in settings.items():
        if value is None:
            continue
        option = BY_KEY[key]
        if key == "faults":
            text = listed(value) if isinstance(value, tuple) else str(value)
            out += [option.flag, text or "none"]
        elif isinstance(value, bool):
            out += [option.flag, "true" if value else "false"]
        elif isinstance(value, tuple):
            out += [option.flag, ",".join(map(str, value))]
        else:
            out += [option.flag, str(value)]
    return out


class WorkerServer:
    """``tapedeck serve --workers N`` with Redis state, stopped on exit."""

    def __init__(
        self,
        redis_server: RedisServer,
        workers: int,
        state_url: str | None = None,
        **settings: Any,
    ) -> None:
        self.redis = redis_server
        self.workers = workers
        state = state_url or redis_server.url  # another address of it, e.g. a proxy's
        self.cmd = [sys.executable, "-m", "tapedeck", "serve", "--host", "127.0.0.1"]
        self.cmd += ["--port", "0", "--workers", str(workers), "--state", state]
        self.cmd += flags(settings)
        self.base_url = ""
        self.output: list[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, name="tapedeck-workers-log", daemon=True)
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> WorkerServer:
        self.redis.flush()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._ready.wait(0.02):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._failed()
        # Every worker answers before a test starts: ask until each pid has been seen is not
        # possible over HTTP, so wait until the health check passes a few times.
        for _ in range(self.workers * 4):
            httpx.get(self.base_url + "/_tapedeck/health", timeout=5).raise_for_status()
        return self

    def _failed(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._thread.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        text = "\n".join(self.output)
        if "cassette problem" in text:
            raise LibraryError([CassetteError("(tapedeck serve)", 0, text)])
        raise ConfigError(text or f"tapedeck serve exited with status {self.proc.returncode}")

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stderr is not None
        logger = logging.getLogger("tapedeck")
        for raw in self.proc.stderr:
            line = raw.rstrip("\n")
            self.output.append(line)
            if not self._ready.is_set():
                found = _START.search(line)
                if found:
                    self.base_url = found.group(1)
                    self._ready.set()
                continue
            message = _STAMP.sub("", line)
            level = logging.WARNING if message.startswith("tapedeck:") else logging.INFO
            logger.handle(logger.makeRecord(logger.name, level, __file__, 0, message, (), None))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._thread.join(timeout=5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> WorkerServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class HeldProxy:
    """A TCP proxy in front of ``port`` whose answers (server to client) can be held back:
    while :meth:`hold` is in force, a client's command reaches Redis but its reply waits
    until :meth:`release`. Shows whether a server waits for Redis without blocking."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._open = threading.Event()
        self._open.set()
        #: Replies waiting for :meth:`release` (bytes).
        self.waiting = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="held-proxy", daemon=True).start()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, held: bool) -> None:
        try:
            while data := source.recv(65536):
                if held and not self._open.is_set():
                    with self._lock:
                        self.waiting += len(data)
                    self._open.wait()
                    with self._lock:
                        self.waiting -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.release()
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()
