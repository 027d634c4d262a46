"""A ``tapedeck serve`` subprocess for the scenarios: its port, log lines, memory and fds,
and how busy the rest of the machine was meanwhile.

``src`` runs tapedeck from another source tree (``--before``), to measure two versions in
one run; options a version does not know are left to the caller.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

START = re.compile(r" on http://(?P<host>[^ ,]+):(?P<port>\d+), ")


def machine_busy() -> tuple[int, int] | None:
    """Busy and total CPU ticks of the whole machine so far (``/proc/stat``), or None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How many cores processes other than ``pids`` (and this one) used over a window."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.start = (time.monotonic(), machine_busy(), self._ours())

    def _ours(self) -> float:
        return time.process_time() + sum(cpu_seconds(p) for p in self.pids)

    def cores(self) -> float | None:
        wall0, busy0, ours0 = self.start
        busy1 = machine_busy()
        if busy0 is None or busy1 is None:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        elapsed = time.monotonic() - wall0
        if elapsed <= 0:
            return None
        machine = (busy1[0] - busy0[0]) / ticks
        return max(0.0, (machine - (self._ours() - ours0)) / elapsed)


class Server:
    """``tapedeck serve ARGS`` on a free port; stop it with :meth:`stop` or :meth:`kill`."""

    def __init__(
        self,
        args: list[str],
        src: Path | None = None,
        cwd: Path | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        """``preexec``: run in the child before tapedeck starts (a limit, a capability
        dropped)."""
        argv = [sys.executable, "-m", "tapedeck", "serve", "--port", "0", *args]
        self._start(argv, src, cwd, preexec)

    @classmethod
    def command(cls, argv: list[str], src: Path | None = None) -> Server:
        """A server started by ``argv`` (a program that runs tapedeck's CLI)."""
        server = cls.__new__(cls)
        server._start(argv, src, None)
        return server

    def _start(
        self,
        argv: list[str],
        src: Path | None,
        cwd: Path | None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEDECK_")}
        if src is not None:
            env["PYTHONPATH"] = str(src)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            cwd=cwd,
            preexec_fn=preexec,
        )
        self.lines: list[str] = []
        self._done = False
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        found = self.wait_for(START.pattern, timeout=30)
        if not found:
            self.stop()
            raise RuntimeError(f"tapedeck did not start: {self.lines[-5:]}")
        match = START.search(found[0])
        assert match is not None
        self.host, self.port = match["host"], int(match["port"])
        self.pid = self.proc.pid

    def _pump(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        with stderr:
            for line in stderr:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 10) -> list[str]:
        """The log lines matching ``pattern`` once ``count`` have arrived (or on timeout)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._changed:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0 or self.proc.poll() is not None:
                    return found
                self._changed.wait(min(left, 0.5))

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        with self._changed:
            return [line for line in self.lines if regex.search(line)]

    def rss_kb(self) -> int:
        """The server's resident memory, in kB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def fds(self) -> int:
        """How many file descriptors the server has open."""
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

    def stop(self) -> list[str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._finished()
        return self.lines

    def _finished(self) -> None:
        """Wait for the last log lines (the pipe closes once the process is gone)."""
        with self._changed:
            self._changed.wait_for(lambda: self._done, timeout=10)

    def kill(self) -> None:
        """``kill -9``: no chance to clean up."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=15)
        self._finished()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def tracebacks(lines: list[str]) -> list[str]:
    """Log lines that belong to a traceback or an unexpected error."""
    return [
        line
        for line in lines
        if "Traceback" in line or "Exception in ASGI" in line or "internal error" in line
    ]
