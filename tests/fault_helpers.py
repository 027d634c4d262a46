"""Helpers shared by the test_faults_*.py files: fault headers, and what the client received.

The client is the official SDK (or raw httpx2) asking for the shipped ``streaming/hello``
(:data:`conftest.HELLO`), whose source events are :data:`HELLO_EVENTS`.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import anthropic
import httpx2

from conftest import CASSETTES, HELLO
from tapedeck.cassette.load import load_cassette
from tapedeck.server.runner import ServerThread
from tapedeck.wire.sse import encode_event

#: streaming/hello's source events, in order (index 2 is a recorded ping).
HELLO_EVENTS = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]
HELLO_ENCODED = [
    encode_event(e.event, e.data)
    for e in load_cassette(CASSETTES / "streaming" / "hello.yaml", "streaming/hello")
    .interactions[0]
    .response.events
    or ()
]
PING_DATA = '{"type":"ping"}'
LONG = httpx2.Timeout(10)
SHORT_READ = httpx2.Timeout(5, read=0.2)
#: How much sooner than planned tapedeck may send an event: it coalesces writes due within
#: half a millisecond (``COALESCE_S`` in tapedeck/wire/writer.py).
EARLY = 0.001


def fault(spec: str, **more: str) -> dict[str, str]:
    return {"x-tapedeck-fault": spec, **more}


def delivered(after: int) -> list[str]:
    """What ``messages.create(stream=True)`` yields of the first ``after`` source events."""
    return [e for e in HELLO_EVENTS[:after] if e != "ping"]


def drain(stream: Any, into: list[str]) -> None:
    """Iterate an SDK stream (or stream manager), recording each event's type."""
    with stream as events:
        for event in events:
            into.append(event.type)


async def adrain(stream: Any, into: list[str]) -> None:
    async with stream as events:
        async for event in events:
            into.append(event.type)


def raw_events(client: anthropic.Anthropic, headers: dict[str, str], into: list[Any]) -> None:
    """The raw SSE events (pings and errors included) of a streamed hello, as (name, data)."""
    with client.messages.create(**HELLO, stream=True, extra_headers=headers) as stream:
        for sse in anthropic.Stream.raw_events(stream.response):
            into.append((sse.event, sse.data))


def timed_events(
    client: anthropic.Anthropic, body: dict[str, Any], headers: dict[str, str]
) -> list[tuple[str, float]]:
    """Raw events with their arrival times, in seconds after the request was sent.

    A time measured from the request is a lower bound the server sets: tapedeck cannot send an
    event before its planned time, and a loaded machine only makes it later. Gaps between
    events have no such bound; compare them with one another, not with a clock."""
    arrivals: list[tuple[str, float]] = []
    sent = time.perf_counter()
    with client.messages.create(**body, extra_headers=headers) as stream:
        for sse in anthropic.Stream.raw_events(stream.response):
            arrivals.append((sse.event or "", time.perf_counter() - sent))
    return arrivals


def gaps(times: list[float]) -> list[float]:
    """The time between each arrival and the one before it."""
    return [b - a for a, b in itertools.pairwise(times)]


def raw_body(server: ServerThread, headers: dict[str, str], into: bytearray) -> None:
    """The response body bytes of a streamed hello, read with plain httpx2."""
    with httpx2.stream(
        "POST",
        f"{server.base_url}/v1/messages",
        json={**HELLO, "stream": True},
        headers=headers,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            into.extend(chunk)


def data_of(encoded: bytes) -> str:
    """The ``data:`` text of one encoded event."""
    return next(
        line.removeprefix(b"data: ").decode()
        for line in encoded.split(b"\n")
        if line.startswith(b"data: ")
    )


#: One request log line per request that reached /v1/messages.
REQUEST_LINE = r"^POST /v1/messages (\d{3}|-) "


def by_status(lines: list[str]) -> list[str]:
    """Request log lines ordered by their status ("-" first), whatever order they came in."""
    return sorted(lines, key=lambda line: line.split()[2])


def statuses(lines: list[str]) -> list[str]:
    """The status of each request log line ("-" when no response started)."""
    return [line.split()[2] for line in lines]
