"""``tapedeck serve --workers N --state redis://...``: N processes on one port sharing their
per-test state in a real redis-server. (The sequence and fault suites also run against two
workers: ``pytest --server-workers 2``, part of ``make test``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import CASSETTES, HELLO, sdk
from tapedeck.record.redact import url_shown
from test_sequences_and_selection import SEQ_REQUEST, seq_cassette
from worker_server import HeldProxy, RedisServer, WorkerServer, free_port


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tapedeck", "serve", "--port", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def answering(base_url: str, want: int, tries: int = 400) -> set[int]:
    """The worker numbers seen over up to ``tries`` new connections (until ``want`` seen)."""
    seen: set[int] = set()
    for _ in range(tries):
        with httpx.Client(base_url=base_url) as h:  # a new connection each time
            seen.add(h.get("/_tapedeck/health").json()["worker"])
        if len(seen) >= want:
            break
    return seen


class Pinned:
    """A client whose one keep-alive connection a known worker accepted: a connection is
    served by the process that accepted it, so every request on it reaches that worker.
    Each response is checked to have come on that connection."""

    def __init__(self, client: httpx.Client, address: object) -> None:
        self.client = client
        self.address = address

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._same(self.client.get(path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._same(self.client.post(path, **kwargs))

    def _same(self, response: httpx.Response) -> httpx.Response:
        assert local_address(response) == self.address, "the request left on a new connection"
        return response


def local_address(response: httpx.Response) -> object:
    """The client end of the connection ``response`` came on."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


@contextmanager
def connection_to(base_url: str, worker: int, tries: int = 400) -> Iterator[Pinned]:
    """A connection that worker ``worker`` accepted: new connections are made until
    ``/_tapedeck/health`` on one names ``worker``."""
    for _ in range(tries):
        with httpx.Client(base_url=base_url, timeout=10) as client:
            health = client.get("/_tapedeck/health")
            if health.json()["worker"] == worker:
                yield Pinned(client, local_address(health))
                return
    raise AssertionError(f"worker {worker} accepted none of {tries} connections")


def worker_pids(parent: int) -> set[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    ).stdout.split()
    return {int(p) for p in found}


def test_workers_share_one_port(redis_server: RedisServer) -> None:
    with WorkerServer(redis_server, 3, cassettes=CASSETTES, timing="instant") as s:
        assert s.proc is not None
        assert len(worker_pids(s.proc.pid)) == 3
        assert answering(s.base_url, 3) == {1, 2, 3}
        with sdk(s) as c:  # type: ignore[arg-type]
            assert c.messages.create(**HELLO).content[0].text == "Hello!"  # type: ignore[union-attr]
        assert "3 workers" in s.output[0]


def test_a_worker_that_dies_is_replaced(redis_server: RedisServer) -> None:
    with WorkerServer(redis_server, 2, cassettes=CASSETTES, timing="instant") as s:
        assert s.proc is not None
        before = worker_pids(s.proc.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while len(after := worker_pids(s.proc.pid) - {victim}) < 2:
            assert time.monotonic() < deadline, f"no new worker: {after}"
            time.sleep(0.05)
        assert answering(s.base_url, 2) == {1, 2}
        assert any("exited (signal SIGKILL); starting another" in line for line in s.output)


def test_sigterm_stops_every_worker(redis_server: RedisServer) -> None:
    s = WorkerServer(redis_server, 2, cassettes=CASSETTES, timing="instant").start()
    assert s.proc is not None
    pids = worker_pids(s.proc.pid)
    s.stop()
    assert s.proc.returncode == 0
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_times_counted_once_across_workers(redis_server: RedisServer) -> None:
    """status:times=3 fires on exactly three requests, whichever workers they reach. The
    requests alternate between the two workers: counted per worker, six would fail."""
    with WorkerServer(redis_server, 2, cassettes=CASSETTES, timing="instant") as s:
        headers = {"x-tapedeck-fault": "status:code=529,times=3", "x-tapedeck-test-id": "t"}
        codes = []
        for i in range(8):
            with connection_to(s.base_url, 1 + i % 2) as h:
                r = h.post("/v1/messages", json={**HELLO, "stream": True}, headers=headers)
                codes.append(r.status_code)
        assert codes == [529, 529, 529, 200, 200, 200, 200, 200]


def test_workers_need_shared_state() -> None:
    done = serve("--cassettes", str(CASSETTES), "--workers", "2")
    assert done.returncode == 2
    assert "workers: 2 workers need shared state: give --state redis://" in done.stderr


def test_workers_do_not_record(redis_server: RedisServer, tmp_path: Path) -> None:
    done = serve(
        "--cassettes", str(tmp_path), "--workers", "2", "--state", redis_server.url, "--mode", "all"
    )
    assert done.returncode == 2
    assert "record with --workers 1, then replay with several" in done.stderr


def test_unreachable_redis_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    url = f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0"
    done = serve("--cassettes", str(CASSETTES), "--workers", "2", "--state", url)
    assert done.returncode == 2
    assert "state: cannot use the Redis server at" in done.stderr
    assert "s3cret-pass" not in done.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host:6379/1", "redis://:***@host:6379/1"),
        ("rediss://user:pw@host/0", "rediss://user:***@host/0"),
        ("redis://user@host/0", "redis://user@host/0"),
        # A password holding "@" or "/" is hidden whole, not from its last "@".
        ("redis://:p@ss@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://:pa/ss@host:6379/0", "redis://:***@host:6379/0"),
        # Query values (password=, ssl_keyfile=, ...) and fragments are hidden too.
        ("redis://host/1?password=hunter2&db=2", "redis://host/1?password=***&db=***"),
        ("unix:///run/redis.sock?password=x", "unix:///run/redis.sock?password=***"),
        ("redis://:sk-ant-api03-abcdefghij@h/0", "redis://:***@h/0"),
    ],
)
def test_shown_urls_hide_passwords(url: str, expected: str) -> None:
    assert url_shown(url) == expected


@pytest.mark.parametrize(
    "url",
    ["redis://:p@ss-word-9@127.0.0.1:1/0", "redis://127.0.0.1:1/0?password=p@ss-word-9"],
)
def test_an_unreachable_store_never_shows_its_password(url: str) -> None:
    done = serve("--cassettes", str(CASSETTES), "--workers", "2", "--state", url)
    assert done.returncode == 2
    assert "state: cannot use the Redis server at" in done.stderr
    assert "ss-word-9" not in done.stderr
    assert "p@ss" not in done.stderr


def test_bad_state_setting_is_refused() -> None:
    done = serve("--cassettes", str(CASSETTES), "--state", "mysql://x")
    assert done.returncode == 2
    assert "expected memory or a Redis URL such as redis://127.0.0.1:6379/0" in done.stderr


def test_the_journal_holds_every_workers_requests(redis_server: RedisServer) -> None:
    with (
        WorkerServer(redis_server, 2, cassettes=CASSETTES, timing="instant") as s,
        connection_to(s.base_url, 1) as one,
        connection_to(s.base_url, 2) as two,
    ):
        for i in range(40):  # the workers in turn: half of them to each
            h = (one, two)[i % 2]
            r = h.post("/v1/messages", json=HELLO, headers={"x-tapedeck-test-id": "j"})
            assert r.status_code == 200
        for h in (one, two):  # each worker has them all, numbered once
            entries = h.get("/_tapedeck/journal", params={"test_id": "j"}).json()["entries"]
            assert [e["id"] for e in entries] == list(range(1, 41))


def test_a_request_waiting_for_redis_does_not_hold_up_the_others(
    redis_server: RedisServer,
) -> None:
    """With Redis's replies held back, a request that needs the store waits for them, and
    one that needs nothing stored is answered meanwhile by the same process: the wait does
    not block its event loop. (With the synchronous client the second one waited too, and
    the first ended in a 500 when its socket timed out.)"""
    proxy = HeldProxy(redis_server.port)
    settings: dict[str, Any] = {"cassettes": CASSETTES, "timing": "instant"}
    try:
        with (
            WorkerServer(redis_server, 1, state_url=proxy.url, **settings) as s,
            ThreadPoolExecutor(1) as pool,
        ):
            proxy.hold()
            needs_store = pool.submit(
                httpx.post,
                s.base_url + "/v1/messages",
                json=HELLO,
                headers={"x-tapedeck-test-id": "held"},
                timeout=60,
            )
            for _ in range(1000):  # until its call reached Redis and the reply is held
                if proxy.waiting:
                    break
                time.sleep(0.01)
            assert proxy.waiting, "the request made no call to Redis"
            own = httpx.post(
                s.base_url + "/v1/messages",
                json=HELLO,
                headers={"x-tapedeck-fault": "none"},  # needs nothing from the store
                timeout=30,
            )
            assert own.status_code == 200
            assert not needs_store.done(), "the first request did not wait for Redis"
            proxy.release()
            assert needs_store.result(timeout=60).status_code == 200
    finally:
        proxy.close()


def test_one_tests_requests_for_one_sequence_take_turns_while_redis_answers(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two requests of one test for one sequence at the same moment, Redis's replies held
    back so that both are inside the round trips at once: each gets its own interaction
    (without turns both read position 0 and got the first)."""
    seq_cassette(tmp_path / "seq.yaml", (200, "req_1"), (200, "req_2"), (200, "req_3"))
    proxy = HeldProxy(redis_server.port)
    headers = {"x-tapedeck-test-id": "turns"}
    try:
        with (
            WorkerServer(redis_server, 1, state_url=proxy.url, cassettes=tmp_path) as s,
            ThreadPoolExecutor(2) as pool,
        ):
            proxy.hold()
            asked = [
                pool.submit(
                    httpx.post,
                    s.base_url + "/v1/messages",
                    json=SEQ_REQUEST,
                    headers=headers,
                    timeout=60,
                )
                for _ in range(2)
            ]
            time.sleep(0.5)  # both requests are in: the first waits for Redis
            proxy.release()
            ids = sorted(f.result(timeout=60).headers["request-id"] for f in asked)
    finally:
        proxy.close()
    assert ids == ["req_1", "req_2"]


#: A ``redis`` package that cannot be imported, first on the path: tapedeck as installed
#: without the ``workers`` extra.
_NO_REDIS = 'raise ImportError("No module named redis (hidden by the test)")\n'


def test_without_the_redis_client_tapedeck_serves_and_state_names_the_extra(
    tmp_path: Path,
) -> None:
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "__init__.py").write_text(_NO_REDIS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    url = f"redis://:pw-secret@127.0.0.1:{free_port()}/0"
    for args in (["--workers", "2", "--state", url], ["--state", url]):
        cmd = [sys.executable, "-m", "tapedeck", "serve", "--port", "0", "--cassettes"]
        done = subprocess.run(
            [*cmd, str(CASSETTES), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "tapedeck: error: state: --state redis://:***@127.0.0.1:"
            f"{url.rsplit(':', 1)[1]} needs the Redis client, which is not installed: pip "
            "install 'tapedeck-mock[workers]' (or --state memory, one process only)"
        ]
    script = (
        "import sys, httpx, tapedeck\n"
        f"with tapedeck.serve(cassettes={str(CASSETTES)!r}, timing='instant') as s:\n"
        "    r = httpx.post(s.base_url + '/v1/messages', json=" + repr(HELLO) + ")\n"
        "    print(r.status_code, 'redis' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["200", "False"], done.stderr
