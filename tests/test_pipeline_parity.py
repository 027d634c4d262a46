"""Every fault kind, on a replayed stream and on a live one: the client sees the same thing.

The same events are served twice: from a cassette (replay, recorded timing) and by a
stand-in upstream that sends them at the same offsets (passthrough, through an
``httpx.MockTransport`` given to the server). One shaper and one writer serve both, so
for each fault the raw body, how it ended, and what the official SDK makes of it must be
identical.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing
from tapedeck.wire.sse import encode_event

MODEL = "claude-parity-1"
TEXTS = ["one", " two", " three", " four"]


def events() -> list[tuple[str, dict[str, Any]]]:
    start = {
        "id": "msg_parity",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    out: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    out += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in TEXTS
    ]
    out += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 4},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return out


#: Offsets (ms after the headers) of each event: steady, or with a long silence before the
#: third delta (for pings sent while the stream is idle).
SCHEDULES = {
    "steady": [i * 5.0 for i in range(9)],
    "silence": [0, 5, 10, 15, 165, 170, 175, 180, 185],
}


def ask(schedule: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": schedule}],
    }


def cassette_text() -> str:
    interactions = []
    for name, offsets in SCHEDULES.items():
        interactions.append(
            {
                "request": {"method": "POST", "path": "/v1/messages", "body": ask(name)},
                "response": {
                    "status": 200,
                    "headers": {"request-id": "req_parity"},
                    "time_to_headers_ms": 0,
                    "events": [
                        {"event": e, "at_ms": at, "data": d}
                        for (e, d), at in zip(events(), offsets, strict=True)
                    ],
                },
            }
        )
    return yaml.safe_dump({"version": 1, "interactions": interactions}, sort_keys=False)


async def upstream(request: httpx.Request) -> httpx.Response:
    """The stand-in API: the same events, at the same offsets from its headers."""
    schedule = json.loads(request.content)["messages"][0]["content"]

    async def body() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for (event, data), at in zip(events(), SCHEDULES[schedule], strict=True):
            delay = started + at / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield encode_event(event, data)

    headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_parity"}
    return httpx.Response(200, headers=headers, content=body())


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("parity")
    (root / "parity.yaml").write_text(cassette_text(), encoding="utf-8")
    settings = Settings(cassettes=root, port=0, timing=Timing.parse("recorded"))
    with ServerThread(settings) as server:
        yield server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = Settings(
        cassettes=tmp_path_factory.mktemp("empty"),
        port=0,
        mode=Mode.PASSTHROUGH,
        upstream="http://upstream.invalid",
    )
    with ServerThread(settings, transport=httpx.MockTransport(upstream)) as server:
        yield server


#: The headers faults set that must be the same on both (a quota's counts, once per server).
KEPT_HEADERS = (
    "retry-after",
    "x-tapedeck-faults",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
)


def raw(server: ServerThread, fault: str, schedule: str) -> tuple[int, bytes, str, dict[str, str]]:
    """Status, body bytes, how the body ended, and the headers that faults set."""
    headers = {"x-tapedeck-fault": fault, "x-api-key": "test-key"}
    body = bytearray()
    with (
        httpx.Client(base_url=server.base_url, timeout=10) as http,
        http.stream("POST", "/v1/messages", json=ask(schedule), headers=headers) as response,
    ):
        try:
            for chunk in response.iter_raw():
                body += chunk
            ended = "complete"
        except httpx.RemoteProtocolError:
            ended = "cut"
        kept = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
        status = response.status_code
    if status != 200:  # a status fault's body names a fresh request id
        error = json.loads(body)
        error.pop("request_id")
        body = bytearray(json.dumps(error).encode())
    return status, bytes(body), ended, kept


def sdk(server: ServerThread, fault: str, schedule: str) -> tuple[list[str], str]:
    """The event types the SDK's stream yielded, and how it ended (text or exception)."""
    seen: list[str] = []
    with anthropic.Anthropic(
        base_url=server.base_url,
        api_key="test-key",
        max_retries=0,
        default_headers={"x-tapedeck-fault": fault},
    ) as client:
        try:
            for event in client.messages.create(**ask(schedule)):
                seen.append(event.type)
            ended = "complete"
        except Exception as exc:  # the comparison is of which exception, not whether
            ended = type(exc).__name__
    return seen, ended


FAULTS = [
    pytest.param("ping:every=2", "steady", id="ping-every"),
    pytest.param("ping:interval=60", "silence", id="ping-interval"),
    pytest.param("error:after=3,type=api_error,message=boom", "steady", id="error"),
    pytest.param("overloaded:after=5", "steady", id="overloaded"),
    pytest.param("disconnect:after=4", "steady", id="disconnect"),
    pytest.param("disconnect:after_bytes=500", "steady", id="disconnect-bytes"),
    pytest.param("disconnect:after_bytes=500;ping:interval=60", "silence", id="bytes-and-pings"),
    pytest.param("truncate:after=6", "steady", id="truncate"),
    pytest.param("garble:after=3", "steady", id="garble"),
    pytest.param("stall:after=2,ms=30", "steady", id="stall"),
    pytest.param("latency:ms=30", "steady", id="latency"),
    pytest.param("status:code=429,retry_after=3", "steady", id="status"),
    pytest.param("ping:every=3;overloaded:after=7", "steady", id="ping-and-overloaded"),
    # Each row's requests (raw, then the SDK's) are a new quota's on both servers.
    pytest.param("quota:requests=100/60s", "steady", id="quota-admits"),
    pytest.param("quota:requests=1/60s", "steady", id="quota-refuses-the-second"),
    pytest.param("quota:requests=5/60s;ping:every=2", "silence", id="quota-and-pings"),
]


@pytest.mark.parametrize(("fault", "schedule"), FAULTS)
def test_replayed_and_live_streams_break_the_same_way(
    replayed: ServerThread, live: ServerThread, fault: str, schedule: str
) -> None:
    assert raw(replayed, fault, schedule) == raw(live, fault, schedule)
    assert sdk(replayed, fault, schedule) == sdk(live, fault, schedule)


def test_without_faults_both_send_the_recorded_bytes(
    replayed: ServerThread, live: ServerThread
) -> None:
    expected = b"".join(encode_event(e, d) for e, d in events())

    for server in (replayed, live):
        status, body, ended, _ = raw(server, "none", "steady")
        assert (status, body, ended) == (200, expected, "complete")


def wire_events(body: bytes) -> list[tuple[str, bytes]]:
    """The events a raw SSE body holds whole: (name, data), in order."""
    found = []
    for block in body.split(b"\n\n")[:-1]:
        fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        found.append((fields.get(b"event", b"").decode(), fields.get(b"data", b"")))
    return found


def journaled(server: ServerThread, fault: str, schedule: str) -> tuple[bytes, dict[str, Any]]:
    """The raw body of one request, and the journal's entry for it."""
    test_id = f"journal {fault} {schedule} {time.monotonic_ns()}"
    headers = {"x-tapedeck-fault": fault, "x-api-key": "test-key", "x-tapedeck-test-id": test_id}
    body = bytearray()
    with (
        httpx.Client(base_url=server.base_url, timeout=10) as http,
        http.stream("POST", "/v1/messages", json=ask(schedule), headers=headers) as response,
    ):
        with contextlib.suppress(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                body += chunk
        (entry,) = http.get("/_tapedeck/journal", params={"test_id": test_id}).json()["entries"]
    return bytes(body), entry


def acted_where_the_wire_says(body: bytes, entry: dict[str, Any]) -> None:
    received = wire_events(body)
    for fault in entry["faults"]:
        kind, at = fault["kind"], fault["events"]
        if kind in ("status", "latency", "quota"):  # the whole response's
            assert at is None
            continue
        if fault["spec"].startswith("ping:interval"):  # as many as the body had idle time for
            assert len(at) == sum(1 for name, _ in received if name == "ping"), fault
        else:
            assert at, fault
        for index in at:
            if kind == "ping":
                assert received[index][0] == "ping", (fault, received)
            elif kind in ("error", "overloaded"):
                assert received[index][0] == "error", (fault, received)
            elif kind == "garble":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(received[index][1])
            elif kind in ("truncate", "disconnect"):
                assert index == len(received) == entry["events"], (fault, received)
            else:  # a stall: the event that came late is a source event
                assert received[index][0] != "ping"
    if entry["status"] == 200:
        assert entry["events"] == len(received)
        assert entry["bytes"] == len(body)


@pytest.mark.parametrize(("fault", "schedule"), FAULTS)
def test_the_journal_says_where_each_fault_acted_on_both(
    replayed: ServerThread, live: ServerThread, fault: str, schedule: str
) -> None:
    replay_body, replay_entry = journaled(replayed, fault, schedule)
    live_body, live_entry = journaled(live, fault, schedule)

    assert replay_entry["source"] in ("cassette", "fault")
    assert live_entry["source"] in ("upstream", "fault")
    assert [f["spec"] for f in replay_entry["faults"]] == [f.strip() for f in fault.split(";")]
    for entry, body in ((replay_entry, replay_body), (live_entry, live_body)):
        acted_where_the_wire_says(body, entry)
    same = ("status", "faults", "events", "end")
    assert {k: replay_entry[k] for k in same} == {k: live_entry[k] for k in same}
    ended = "cut" if "disconnect" in fault else "complete"
    assert replay_entry["end"] == ended
