"""The shared (Redis) journal numbers a process's entries in the order its requests
finished, however many are written at once, and keeps at most ``journal_size`` waiting; a
read waits for the entries other workers have yet to write, for at most ``WAIT_S``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from conftest import CASSETTES, HELLO
from tapedeck.cassette.model import RecordedRequest
from tapedeck.config import Settings
from tapedeck.observe import journal_sync
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


async def _two_workers(redis_server: RedisServer) -> tuple[SharedJournal, SharedJournal]:
    """Two workers' journals, each answering the other's reads (as ``serve`` starts them)."""
    reader = SharedJournal(Store(redis_server.url), 100, 1024, 60)
    writer = SharedJournal(Store(redis_server.url), 100, 1024, 60)
    reader.start()
    writer.start()
    await asyncio.sleep(0.3)  # both listening
    return reader, writer


async def _stop(*journals: SharedJournal) -> None:
    for journal in journals:
        journal.closed = True
    await asyncio.sleep(0.7)  # their listeners notice within half a second
    for journal in journals:
        await journal.store.client().aclose()


def test_a_read_waits_for_the_entries_another_worker_has_yet_to_write(
    redis_server: RedisServer,
) -> None:
    redis_server.client.flushdb()

    async def run() -> tuple[bool, list[int]]:
        reader, writer = await _two_workers(redis_server)
        release = asyncio.Event()
        add = writer._add

        async def held(batch: list[tuple[list[str], list[object]]]) -> list[object]:
            await release.wait()  # the write of an answered request, still on its way
            return await add(batch)

        writer._add = held  # type: ignore[method-assign]
        writer.add(_exchange(1))
        reading = asyncio.create_task(reader.read())
        await asyncio.sleep(0.3)
        waited = not reading.done()
        release.set()
        found = [e.as_json()["status"] - 200 for e in await reading]
        await _stop(reader, writer)
        return waited, found

    waited, found = asyncio.run(run())
    assert waited
    assert found == [1]


def test_a_worker_that_never_writes_holds_a_read_up_for_at_most_wait_s(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_server.client.flushdb()
    monkeypatch.setattr(journal_sync, "WAIT_S", 0.4)

    async def run() -> tuple[float, list[int]]:
        reader, writer = await _two_workers(redis_server)
        stuck = asyncio.Event()

        async def never(batch: list[tuple[list[str], list[object]]]) -> list[object]:
            await stuck.wait()
            return []

        writer._add = never  # type: ignore[method-assign]
        writer.add(_exchange(1))
        reader.add(_exchange(2))
        started = asyncio.get_running_loop().time()
        found = [e.as_json()["status"] - 200 for e in await reader.read()]
        took = asyncio.get_running_loop().time() - started
        stuck.set()
        await _stop(reader, writer)
        return took, found

    took, found = asyncio.run(run())
    assert found == [2]  # what is there: its own, written before the read went on
    assert took >= 0.3  # it waited for the silent worker, then read what was there
