"""The servers a benchmark runs — tapedeck through its CLI, another tree's tapedeck, the bare
app — each in a process of its own; the load generator run against one; and the versions
line a report starts with."""

from __future__ import annotations

import http.client
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: With --observe, tapedeck also runs with the request journal and the metrics turned off
#: (``off``), and with only one of them on, to show what each costs in the same run.
OBSERVE = {
    "off": ["--journal-size", "0", "--no-metrics"],
    "journal": ["--no-metrics"],
    "metrics": ["--journal-size", "0"],
}


class Server:
    """A server subprocess (``tapedeck``, ``before``, ``bare`` or one of :data:`OBSERVE`) on
    a free port, stopped on exit. ``before`` is tapedeck run from another source tree
    (``src``); the :data:`OBSERVE` kinds are tapedeck with those flags."""

    def __init__(
        self, kind: str, timing: str, cassette_dir: Path, log: Path, src: Path | None = None
    ) -> None:
        self.kind = kind
        self.timing = timing
        self.log = log
        self.env = None
        if kind in ("tapedeck", "before", *OBSERVE):
            exe = Path(sys.executable).with_name("tapedeck")
            cmd = (
                [str(exe)]
                if exe.exists() and kind != "before"
                else [sys.executable, "-m", "tapedeck"]
            )
            cmd += ["serve", "--cassettes", str(cassette_dir), "--host", "127.0.0.1"]
            cmd += ["--port", "0", "--timing", timing, *OBSERVE.get(kind, [])]
            # A temporary directory: no cache file left behind, unless the caller's env
            # (the start-up rows) names a cache.
            self.env = {**os.environ, "TAPEDECK_INDEX_CACHE": "off"}
            if kind == "before":
                assert src is not None
                self.env["PYTHONPATH"] = str(src)
        else:
            cmd = [sys.executable, str(BENCH / "bare_app.py"), "--mode", timing]
            cmd += ["--cassette", str(cassette_dir / "bench.yaml"), "--port", "0"]
        self.cmd = cmd
        self.health = "/" if kind == "bare" else "/_tapedeck/health"
        self.start_timeout = 30.0  # seconds until healthy
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env
            )
        deadline = time.monotonic() + self.start_timeout
        while not self.port:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", self.log.read_text(errors="replace"))
            if found:
                self.port = int(found.group(1))
            else:
                self._check(deadline)
                time.sleep(0.02)
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", self.health)
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
                conn.close()
            except OSError:
                pass
            self._check(deadline)
            time.sleep(0.02)

    def _check(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None or time.monotonic() > deadline:
            self.__exit__()
            sys.exit(f"bench: {self.kind} server did not start:\n{self.log.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def impl(self) -> str:
        """Which event loop and HTTP parser the process loaded (from ``/proc/PID/maps``)."""
        try:
            maps = Path(f"/proc/{self.pid}/maps").read_text()
        except OSError:
            return "unknown"
        loop = "uvloop" if "/uvloop/" in maps else "asyncio"
        http = "httptools" if "/httptools/" in maps else "h11"
        return f"{loop}+{http}"

    def __exit__(self, *exc_info: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # SIGINT may be ignored in background jobs
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def loadgen(job: str, server: Server, cassette: Path, timeout: float, *opts: str) -> dict:
    cmd = [sys.executable, str(BENCH / "loadgen.py"), job, "--cassette", str(cassette)]
    cmd += ["--port", str(server.port), "--server-pid", str(server.pid), *opts]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        sys.exit(f"bench: the load generator did not finish in {timeout:.0f} s")
    if done.returncode != 0:
        sys.exit(f"bench: the load generator failed:\n{done.stderr[-3000:]}")
    result: dict = json.loads(done.stdout)
    if result["errors"]:
        print(
            f"bench: {server.kind}: {result['errors']} bad responses, e.g. "
            f"{result['error_samples'][:2]}",
            file=sys.stderr,
        )
    return result


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def versions() -> str:
    def v(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    return (
        f"tapedeck {v('tapedeck-mock')}{_git_state()}, "
        f"python {platform.python_version()}, uvicorn {v('uvicorn')}, starlette "
        f"{v('starlette')}, anyio {v('anyio')}, uvloop {v('uvloop')}, httptools "
        f"{v('httptools')}, {os.cpu_count()} CPUs"
    )


def _git_state() -> str:
    """`` at git abc1234`` (``+ changes`` if the server tree is modified), or ``""``."""
    root = BENCH.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "server"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" at git {head}{' + uncommitted server changes' if dirty else ''}"
