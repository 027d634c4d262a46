"""The shared (Redis) journal numbers a process's entries in the order its requests
finished, however many are written at once, and keeps at most ``journal_size`` waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from conftest import CASSETTES, HELLO
from tapedeck.cassette.model import RecordedRequest
from tapedeck.config import Settings
from tapedeck.observe.exchange import Exchange
from tapedeck.observe.shared_journal import ENTRIES, SharedJournal
from tapedeck.server.runner import ServerThread
from tapedeck.state.shared import Store
from worker_server import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


def _exchange(i: int) -> Exchange:
    exchange = Exchange()
    exchange.method = "POST"
    exchange.text = f"request {i}"
    exchange.status = 200 + i  # what tells the entries apart once read back
    exchange.unparsed = ("", RecordedRequest("POST", "/v1/messages", (), (), None), 0)
    return exchange


async def _written() -> None:
    """Return once every task but this one is done: the entries are written."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    while others:
        await asyncio.wait(others)
        others = asyncio.all_tasks() - {asyncio.current_task()}


def test_entries_are_numbered_in_the_order_they_were_added(redis_server: RedisServer) -> None:
    redis_server.client.flushdb()

    async def run() -> list[int]:
        journal = SharedJournal(Store(redis_server.url), 1000, 1024, 60)
        for i in range(300):  # finished one after the other, before any is written
            journal.add(_exchange(i))
        await _written()
        found = [e.as_json()["status"] - 200 for e in await journal.read()]
        await journal.store.client().aclose()
        return found

    assert asyncio.run(run()) == list(range(300))


def test_at_most_journal_size_entries_wait(redis_server: RedisServer) -> None:
    redis_server.client.flushdb()

    async def run() -> tuple[int, list[int]]:
        journal = SharedJournal(Store(redis_server.url), 50, 1024, 60)
        for i in range(500):
            journal.add(_exchange(i))
        waiting = len(journal._waiting)
        await _written()
        found = [e.as_json()["status"] - 200 for e in await journal.read()]
        await journal.store.client().aclose()
        return waiting, found

    waiting, kept = asyncio.run(run())
    assert waiting <= 50
    assert kept == list(range(450, 500))  # the newest, in order


def test_a_stopping_server_writes_what_waits_and_closes_its_connections(
    redis_server: RedisServer,
) -> None:
    redis_server.client.flushdb()
    mine = {c["id"] for c in redis_server.client.client_list()}
    settings = Settings(cassettes=CASSETTES, port=0, state=redis_server.url)
    with ServerThread(settings) as server, httpx.Client(base_url=server.base_url) as http:
        for _ in range(5):
            assert http.post("/v1/messages", json=HELLO).status_code == 200
    assert redis_server.client.llen(ENTRIES) == 5  # the last ones too, written before it ended
    left = [c for c in redis_server.client.client_list() if c["id"] not in mine]
    assert left == [], left
