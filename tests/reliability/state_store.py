"""The state store going away and coming back, under ``--workers 2 --state redis://...``.

A real ``redis-server`` (no persistence) on a free port; tapedeck with two workers and its
state there; requests from new connections (so both workers answer). Then, each round:

- Redis is killed (``SIGKILL``): every request that needs the store gets an API-shaped
  ``503`` naming the store (never its password) and the reason, ``/_tapedeck/health``
  answers 503 with the reason, a request that needs nothing of the store (its own
  ``x-tapedeck-fault`` header, a one-interaction cassette) is still answered, and the log
  says so once — one line for both workers;
- Redis is started again on the same port: requests are answered again within a few
  seconds, health says ``ok``, and the log says once that the store is back and once that
  it lost what it kept (the restart had no persistence).

No traceback, and no ``internal error``, may reach the log at any point.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from conftest import CASSETTES, HELLO
from worker_server import free_port

from .outcome import Outcome
from .proc import Server, tracebacks

SHORT, FULL = (1, 3), (3, 40)  # rounds, requests per phase
PASSWORD = "s3cret-store-pw"
GONE = r"\d tapedeck: state store redis://:\*\*\*@127\.0\.0\.1:\d+/0 unreachable: "
BACK = r"\d tapedeck: state store redis://:\*\*\*@127\.0\.0\.1:\d+/0 is back"
LOST = r"\d tapedeck: state store redis://:\*\*\*@127\.0\.0\.1:\d+/0 lost what it kept"


class Redis:
    """A ``redis-server`` on ``port`` that can be killed and started again there."""

    def __init__(self, port: int, password: str = PASSWORD) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary, self.port, self.password = binary, port, password
        self.dir = Path(tempfile.mkdtemp(prefix="tapedeck-store-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        listen = ["--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [self.binary, *listen, "--save", "", "--requirepass", self.password],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _ask(base: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """One request on a new connection (so that either worker may answer)."""
    with httpx.Client(base_url=base, timeout=20) as client:
        return client.post("/v1/messages", json=HELLO, headers=headers or {})


def _health(base: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=20) as client:
        return client.get("/_tapedeck/health")


def _is_store_503(response: httpx.Response, failures: list[str], what: str) -> bool:
    """Whether ``response`` is the API-shaped 503 naming the store (a failure noted if not)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message", "") if isinstance(error, dict) else ""
    good = (
        response.status_code == 503
        and body.get("type") == "error"  # type: ignore[union-attr]
        and error.get("type") == "api_error"  # type: ignore[union-attr]
        and message.startswith("tapedeck: state store redis://:***@127.0.0.1:")
        and " unreachable: " in message
    )
    if not good:
        failures.append(f"{what}: expected the store's 503, got {response.status_code} {body}")
    if PASSWORD in response.text:
        failures.append(f"{what}: the store's password is in the answer")
    return good


def run(full: bool) -> Outcome:
    rounds, count = FULL if full else SHORT
    outcome = Outcome("state_store")
    failures = outcome.failures
    started = time.perf_counter()
    redis = Redis(free_port())
    redis.start()
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis.port}/0"
    totals = {"503": 0, "served without the store": 0, "answered after": 0, "recovery_s": 0.0}
    try:
        args = ["--cassettes", str(CASSETTES), "--timing", "instant"]
        with Server([*args, "--workers", "2", "--state", url]) as server:
            base = f"http://{server.host}:{server.port}"
            for round_ in range(rounds):
                for n in range(count):
                    response = _ask(base, {"x-tapedeck-test-id": f"before-{round_}-{n}"})
                    if response.status_code != 200:
                        failures.append(f"round {round_}: before: {response.status_code}")
                redis.kill()
                for n in range(count):
                    if _is_store_503(_ask(base), failures, f"round {round_}: request {n}"):
                        totals["503"] += 1
                    own = _ask(base, {"x-tapedeck-fault": "none"})  # needs nothing stored
                    if own.status_code == 200:
                        totals["served without the store"] += 1
                    else:
                        failures.append(f"round {round_}: own faults: {own.status_code}")
                for _ in range(2 if count < 10 else 6):  # both workers, likely
                    health = _health(base)
                    reason = health.json().get("reason", "")
                    if health.status_code != 503 or " unreachable: " not in reason:
                        failures.append(f"round {round_}: health: {health.status_code} {reason}")
                gone = server.wait_for(GONE, count=round_ + 1, timeout=5)
                if len(gone) != round_ + 1:
                    failures.append(f"round {round_}: {len(gone)} lines say the store went")
                redis.start()
                back_at = time.perf_counter()
                # Back once requests have been answered for 0.6 s in a row: each worker tries
                # the store again at most every 0.5 s, so one may say 503 a little longer.
                streak_from: float | None = None
                while True:
                    response = _ask(base)
                    now = time.perf_counter()
                    if response.status_code != 200:
                        streak_from = None
                    elif streak_from is None:
                        streak_from = now
                    elif now - streak_from > 0.6:
                        break
                    if time.perf_counter() - back_at > 10:
                        failures.append(f"round {round_}: not answered 10 s after Redis came back")
                        break
                    time.sleep(0.05)
                totals["recovery_s"] = max(totals["recovery_s"], time.perf_counter() - back_at)
                for _ in range(count):
                    if _ask(base).status_code == 200:
                        totals["answered after"] += 1
                    else:
                        failures.append(f"round {round_}: after: not answered")
                for _ in range(2 if count < 10 else 6):
                    if _health(base).status_code != 200:
                        failures.append(f"round {round_}: health after: not ok")
                for pattern, what in ((BACK, "is back"), (LOST, "lost what it kept")):
                    said = server.wait_for(pattern, count=round_ + 1, timeout=5)
                    if len(said) != round_ + 1:
                        failures.append(f"round {round_}: {len(said)} lines say the store {what}")
            lines = server.stop()
        for pattern in (GONE, BACK, LOST):
            found = [line for line in lines if re.search(pattern, line)]
            if len(found) != rounds:
                failures.append(f"{len(found)} log lines match {pattern!r}, not {rounds}")
        bad = tracebacks(lines)
        if bad:
            failures.append(f"tracebacks or internal errors in the log: {bad[:3]}")
        if any(PASSWORD in line for line in lines):
            failures.append("the store's password is in the log")
    finally:
        redis.stop()
    outcome.figures = {
        "rounds (Redis killed, restarted)": str(rounds),
        "503 naming the store": str(totals["503"]),
        "served without the store meanwhile": str(totals["served without the store"]),
        "answered after it came back": str(totals["answered after"]),
        "recovery after restart": f"{totals['recovery_s']:.2f} s",
        "log lines gone / back / lost": f"{rounds} each" if not failures else "see failures",
        "took": f"{time.perf_counter() - started:.1f} s",
    }
    return outcome


if __name__ == "__main__":
    print(json.dumps(run(False).__dict__, indent=1))
