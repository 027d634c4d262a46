"""Faults on live upstream streams (passthrough and record modes), over real sockets.

The fake upstream streams ``message_start``, ``content_block_start``, ``ping``, one
``text_delta`` per word, ``content_block_stop``, ``message_delta`` and ``message_stop``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from conformance_sdk import CUT, STALL, raises_like
from conftest import running, sdk
from fake_upstream import FakeUpstream, stream_events
from tapedeck.config import Mode
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import parse_faults

TEXT = "one two three four five"
MODEL = "claude-fake-4-5"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def passthrough(fake: FakeUpstream, tmp_path: Path) -> Iterator[ServerThread]:
    fake.reset()
    with running(tmp_path, mode=Mode.PASSTHROUGH, upstream=fake.base_url) as server:
        yield server


def ask(text: str = TEXT) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


def raw_events(server: ServerThread, fault: str, text: str = TEXT) -> list[str]:
    """The event names tapedeck sent, read as raw SSE."""
    body = {**ask(text), "stream": True}
    headers = {"x-tapedeck-fault": fault, "x-api-key": "k"}
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        response = http.post("/v1/messages", json=body, headers=headers)
    return [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]


SOURCE = [name for name, _ in stream_events(0, TEXT)]


def test_ping_every_event_of_a_live_stream(passthrough: ServerThread) -> None:
    names = raw_events(passthrough, "ping:every=1")
    expected: list[str] = []
    for name in SOURCE:
        expected += [name, "ping"]
    assert names == expected


def test_overloaded_mid_live_stream(passthrough: ServerThread) -> None:
    seen: list[str] = []

    def read_all(client: anthropic.Anthropic) -> None:
        for event in client.messages.create(**ask(), stream=True):
            seen.append(event.type)

    with (
        sdk(passthrough, "overloaded:after=4") as client,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        read_all(client)
    assert seen == [n for n in SOURCE[:4] if n != "ping"]
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_disconnect_cuts_a_live_stream(passthrough: ServerThread) -> None:
    with (
        sdk(passthrough, "disconnect:after=4") as client,
        raises_like(CUT),
        client.messages.stream(**ask()) as stream,
    ):
        stream.until_done()


def test_truncate_ends_a_live_stream_cleanly(passthrough: ServerThread) -> None:
    with sdk(passthrough, "truncate:after=5") as client, client.messages.stream(**ask()) as stream:
        message = stream.get_final_message()
    assert message.content[0].type == "text"
    assert message.content[0].text == "one two "
    assert message.stop_reason is None


def test_garble_in_a_live_stream(passthrough: ServerThread) -> None:
    with (
        sdk(passthrough, "garble:after=3") as client,
        pytest.raises(json.JSONDecodeError),
        client.messages.stream(**ask()) as stream,
    ):
        stream.until_done()


def test_status_answers_without_calling_the_upstream(
    passthrough: ServerThread, fake: FakeUpstream
) -> None:
    fault = "status:code=529,times=1,retry_after_ms=1"
    with sdk(passthrough, fault, max_retries=1) as client:
        message = client.messages.create(**ask())
    assert message.content[0].type == "text"
    assert message.content[0].text == TEXT
    assert fake.count == 1  # the 529 never reached the upstream


def test_stall_and_latency_on_live_streams(passthrough: ServerThread) -> None:
    short = anthropic.Timeout(5, read=0.15)
    with (
        sdk(passthrough, "stall:after=3,ms=600", timeout=short) as client,
        raises_like(STALL),
        client.messages.stream(**ask()) as stream,
    ):
        stream.until_done()
    with (
        sdk(passthrough, "latency:ms=600", timeout=short) as client,
        pytest.raises(anthropic.APITimeoutError),
    ):
        client.messages.create(**ask(), stream=True)
    with sdk(passthrough, "stall:after=3,ms=300") as client:
        started = time.perf_counter()
        with client.messages.stream(**ask()) as stream:
            assert stream.get_final_text() == TEXT
        assert time.perf_counter() - started >= 0.3


def test_interval_pings_while_the_upstream_is_silent(passthrough: ServerThread) -> None:
    body = {**ask("hang on"), "stream": True}
    headers = {"x-tapedeck-fault": "ping:interval=50", "x-api-key": "k"}
    names: list[str] = []
    with (
        httpx.Client(base_url=passthrough.base_url, timeout=5) as http,
        http.stream("POST", "/v1/messages", json=body, headers=headers) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: "):
                names.append(line[7:])
            if names.count("ping") >= 3:
                break
    assert names[0] == "message_start"
    assert names[1:4] == ["ping", "ping", "ping"]


def test_recordings_are_taken_before_faults(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.reset()
    faults = parse_faults("ping:every=1")
    with (
        running(tmp_path, mode=Mode.RECORD, upstream=fake.base_url, faults=faults) as server,
        sdk(server) as client,
        client.messages.stream(**ask()) as stream,
    ):
        assert stream.get_final_text() == TEXT
    (path,) = tmp_path.rglob("*.yaml")
    recorded = yaml.safe_load(path.read_text())["interactions"][0]["response"]["events"]
    assert [e["event"] for e in recorded] == SOURCE  # the fake's own ping only


def test_a_stream_a_fault_ended_early_is_not_recorded(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.reset()
    with (
        running(tmp_path, mode=Mode.RECORD, upstream=fake.base_url) as server,
        sdk(server, "truncate:after=3") as client,
        client.messages.stream(**ask()) as stream,
    ):
        stream.until_done()
    assert list(tmp_path.rglob("*.yaml")) == []
