"""How a replayed stream ends: a recorded disconnect, a clean end without message_stop,
and a client that goes away in the middle."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx
import pytest

from conformance_sdk import CUT, raises_like
from conftest import LogLines, MakeServer, sdk
from tapedeck.shaping.timing import Timing


def start_event(message_id: str) -> str:
    return f"""\
        - event: message_start
          at_ms: 0
          data:
            type: message_start
            message:
              id: {message_id}
              type: message
              role: assistant
              content: []
              model: m
              stop_reason: null
              stop_sequence: null
              usage: {{input_tokens: 7, output_tokens: 1}}
        - event: content_block_start
          at_ms: 5
          data: {{type: content_block_start, index: 0, content_block: {{type: text, text: ""}}}}
"""


def delta(text: str, at_ms: int) -> str:
    return f"""\
        - event: content_block_delta
          at_ms: {at_ms}
          data:
            type: content_block_delta
            index: 0
            delta: {{type: text_delta, text: "{text}"}}
"""


def request(content: str) -> str:
    return f"""\
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 32
        stream: true
        messages: [{{role: user, content: {content}}}]
"""


ENDINGS = (
    "version: 1\ninteractions:\n"
    # A stream cut off after two text deltas, 150 ms after the headers.
    + request("cut")
    + """\
    response:
      status: 200
      time_to_headers_ms: 30
      end: disconnect
      end_at_ms: 150
      events:
"""
    + start_event("msg_cut")
    + delta("Hel", 10)
    + delta("lo", 20)
    # A stream that ends cleanly but early: no content_block_stop, message_delta or stop.
    + request("partial")
    + """\
    response:
      status: 200
      events:
"""
    + start_event("msg_partial")
    + delta("Part", 10)
    + delta("ial", 20)
    # A stream with a long pause before its last event.
    + request("long pause")
    + """\
    response:
      status: 200
      end: complete
      events:
"""
    + start_event("msg_long")
    + delta("never", 30000)
    # Something quick to ask for afterwards.
    + request("quick")
    + """\
    response:
      status: 200
      events:
"""
    + start_event("msg_quick")
    + delta("quick", 5)
    + """\
        - event: content_block_stop
          at_ms: 5
          data: {type: content_block_stop, index: 0}
        - event: message_delta
          at_ms: 5
          data: {type: message_delta, delta: {stop_reason: end_turn, stop_sequence: null},
                 usage: {output_tokens: 3}}
        - event: message_stop
          at_ms: 5
          data: {type: message_stop}
"""
)


def kwargs(content: str) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 32, "messages": [{"role": "user", "content": content}]}


@pytest.fixture
def endings(tmp_path: Path) -> Path:
    (tmp_path / "endings.yaml").write_text(ENDINGS, encoding="utf-8")
    return tmp_path


# --- end: disconnect ------------------------------------------------------------------------


def read_text(manager: Any, into: list[str]) -> None:
    with manager as stream:
        for text in stream.text_stream:
            into.append(text)


def read_types(stream: Any, into: list[str]) -> None:
    with stream:
        for event in stream:
            into.append(event.type)


@pytest.mark.parametrize("timing", ["instant", "recorded"])
def test_recorded_disconnect_raises_what_a_cut_raises(
    endings: Path, make_server: MakeServer, timing: str
) -> None:
    """What the SDK raises for a cut connection: the transport's error up to anthropic 2.16,
    an ``APIConnectionError`` from 2.17 (the conformance table says which, per release)."""
    with make_server(endings, timing=Timing.parse(timing)) as s, sdk(s) as c:
        received: list[str] = []
        start = time.perf_counter()
        with raises_like(CUT) as caught:
            read_text(c.messages.stream(**kwargs("cut")), received)
        elapsed = (time.perf_counter() - start) * 1000
        assert received == ["Hel", "lo"]
        assert "incomplete chunked read" in str(caught.value)
        if timing == "recorded":
            # The cut happens at end_at_ms (150 ms after the 30 ms to headers), not before.
            assert elapsed >= 30 + 150 - 2, elapsed

        types: list[str] = []
        stream = c.messages.create(**kwargs("cut"), stream=True)
        with raises_like(CUT):
            read_types(stream, types)
        assert types == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
        ]
        # The server is fine afterwards.
        with c.messages.stream(**kwargs("quick")) as quick:
            assert quick.get_final_text() == "quick"


@pytest.mark.anyio
@pytest.mark.parametrize("timing", ["instant", "recorded"])
async def test_recorded_disconnect_async(
    endings: Path, make_server: MakeServer, timing: str
) -> None:
    with make_server(endings, timing=Timing.parse(timing)) as s:
        async with anthropic.AsyncAnthropic(base_url=s.base_url, api_key="k", max_retries=0) as c:
            received: list[str] = []

            async def read() -> None:
                async with c.messages.stream(**kwargs("cut")) as stream:
                    async for text in stream.text_stream:
                        received.append(text)

            with raises_like(CUT):
                await read()
            assert received == ["Hel", "lo"]


def test_recorded_disconnect_on_the_wire(endings: Path, make_server: MakeServer) -> None:
    """The body stops after the last event, without the terminating zero-size chunk."""
    body = (
        b'{"model":"m","max_tokens":32,"stream":true,"messages":[{"role":"user","content":"cut"}]}'
    )
    with make_server(endings) as s:
        url = urlsplit(s.base_url)
        assert url.hostname is not None
        assert url.port is not None
        data = b""
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            while part := sock.recv(65536):
                data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert rest.endswith(b'"text":"lo"}}\n\n\r\n')  # the last event, then the cut
    assert not rest.endswith(b"0\r\n\r\n")
    assert rest.count(b"event: ") == 4


def test_recorded_disconnect_is_not_logged_as_an_error(
    endings: Path, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with make_server(endings) as s, sdk(s) as c:
        with raises_like(CUT):
            read_text(c.messages.stream(**kwargs("cut")), [])
        found = tapedeck_log.wait_for("^POST /v1/messages 200 endings", timeout=2)
        assert found, tapedeck_log.lines()
        line = found[0]
        assert line.endswith("(connection cut as recorded)")
    # The server has stopped (its thread is joined), so every record it made is in: a
    # deliberate, recorded cut is not an internal error.
    assert [r.getMessage() for r in tapedeck_log.records if r.levelno >= logging.WARNING] == []


# --- end: complete without message_stop -----------------------------------------------------


def test_clean_end_without_message_stop(endings: Path, make_server: MakeServer) -> None:
    with make_server(endings) as s, sdk(s) as c:
        with c.messages.stream(**kwargs("partial")) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "Partial"
        assert final.id == "msg_partial"
        assert len(final.content) == 1
        assert final.content[0].type == "text"
        assert final.content[0].text == "Partial"
        assert final.stop_reason is None
        assert final.usage.output_tokens == 1

        with c.messages.create(**kwargs("partial"), stream=True) as raw:
            types = [e.type for e in raw]
        assert types == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
        ]


@pytest.mark.anyio
async def test_clean_end_without_message_stop_async(endings: Path, make_server: MakeServer) -> None:
    with make_server(endings) as s:
        async with (
            anthropic.AsyncAnthropic(base_url=s.base_url, api_key="k", max_retries=0) as c,
            c.messages.stream(**kwargs("partial")) as stream,
        ):
            final = await stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "Partial"
    assert final.stop_reason is None


# --- the client goes away -------------------------------------------------------------------


def abandon_long_stream(c: anthropic.Anthropic) -> list[str]:
    """Read the first events of the long stream, then close it before the 30 s pause ends."""
    stream = c.messages.create(**kwargs("long pause"), stream=True)
    with stream:
        iterator = iter(stream)
        return [next(iterator).type, next(iterator).type]


def test_client_disconnect_ends_the_server_task(
    endings: Path, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with make_server(endings, timing=Timing.parse("recorded")) as s:
        with sdk(s) as c:
            started = time.perf_counter()
            assert abandon_long_stream(c) == ["message_start", "content_block_start"]
        # The server-side task ends soon after the client left, not 30 s later.
        found = tapedeck_log.wait_for("^POST /v1/messages 200 endings", timeout=1.5)
        assert found, tapedeck_log.lines()
        line = found[0]
        duration_ms = float(line.split()[4].removesuffix("ms"))
        assert duration_ms < 2000, line
        # The server is healthy and answers the next request promptly.
        with httpx.Client(base_url=s.base_url) as h:
            assert h.get("/_tapedeck/health").json()["status"] == "ok"
        with sdk(s) as c:
            t0 = time.perf_counter()
            with c.messages.stream(**kwargs("quick")) as stream:
                assert "".join(stream.text_stream) == "quick"
            assert time.perf_counter() - t0 < 1.0
        assert time.perf_counter() - started < 5


def test_client_disconnect_is_not_reported_as_recorded_cut_or_error(
    endings: Path, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with make_server(endings, timing=Timing.parse("recorded")) as s:
        with sdk(s) as c:
            abandon_long_stream(c)
        found = tapedeck_log.wait_for("^POST /v1/messages 200 endings", timeout=1.5)
        assert found, tapedeck_log.lines()
        line = found[0]
    # The server has stopped (its thread is joined), so every record it made is in. The
    # cassette records a complete stream: the client left, nothing was cut "as recorded".
    assert "as recorded" not in line
    assert [r.getMessage() for r in tapedeck_log.records if r.levelno >= logging.WARNING] == []


@pytest.mark.anyio
async def test_async_client_disconnect(endings: Path, make_server: MakeServer) -> None:
    with make_server(endings, timing=Timing.parse("recorded")) as s:
        async with anthropic.AsyncAnthropic(base_url=s.base_url, api_key="k", max_retries=0) as c:
            stream = await c.messages.create(**kwargs("long pause"), stream=True)
            async with stream:
                first = [await anext(stream), await anext(stream)]
            assert [e.type for e in first] == ["message_start", "content_block_start"]
            t0 = time.perf_counter()
            async with c.messages.stream(**kwargs("quick")) as quick:
                final = await quick.get_final_message()
            assert time.perf_counter() - t0 < 1.0
    assert final.content[0].type == "text"
    assert final.content[0].text == "quick"
