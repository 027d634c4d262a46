"""The upstream client: made when the server starts, with a transport that can be replaced,
and timing the answer from the moment the request is sent."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import anyio
import httpx

from conftest import sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import only_cassette
from stamped import exchange
from tapedeck.config import Mode, Settings
from tapedeck.server.app import Tapedeck
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

MESSAGE = {
    "id": "msg_mock",
    "type": "message",
    "role": "assistant",
    "model": "claude-mock-1",
    "content": [{"type": "text", "text": "from the mock transport"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 4},
}
#: Set-up before the first request goes out: far longer than the upstream's own wait.
SETUP_S = 0.3
#: Rounding (a cassette keeps tenths of a millisecond) and the rates of two clocks.
CLOCKS_MS = 1.0


def settings(root: Path, upstream: str) -> Settings:
    return Settings(
        cassettes=root, port=0, mode=Mode.RECORD, upstream=upstream, timing=Timing.parse("instant")
    )


def test_the_client_exists_before_the_first_request(tmp_path: Path) -> None:
    with ServerThread(settings(tmp_path, "http://upstream.invalid")) as server:
        app = server.server.config.app
        assert isinstance(app, Tapedeck)
        assert app.handler.upstream._client is not None


def test_a_mock_transport_stands_in_for_the_api(tmp_path: Path) -> None:
    seen: list[dict[str, object]] = []
    thinking: list[float] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        began = time.time()
        await asyncio.sleep(0.1)  # the API thinking before its headers
        thinking.append((time.time() - began) * 1000)
        return httpx.Response(200, json=MESSAGE, headers={"request-id": "req_mock"})

    upstream = httpx.MockTransport(answer)
    with (
        ServerThread(settings(tmp_path, "http://upstream.invalid"), transport=upstream) as server,
        sdk(server) as client,
    ):
        asked = time.time()
        message = client.messages.create(**ask("through the mock"))
        answered = time.time()

    assert message.content[0].type == "text"
    assert message.content[0].text == "from the mock transport"
    assert seen == [ask("through the mock")]
    recorded = only_cassette(tmp_path)["interactions"][0]["response"]
    assert recorded["body"] == MESSAGE
    # The window covers the mock's thinking, within the client's call.
    ttfb = recorded["time_to_headers_ms"]
    assert thinking[0] - CLOCKS_MS <= ttfb <= (answered - asked) * 1000 + CLOCKS_MS


class SlowSetup(httpx.AsyncBaseTransport):
    """The real transport, after :data:`SETUP_S` of set-up before each request (as a first
    connection, an import or a TLS handshake takes): it notes when it hands the request on."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.handed_on: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.sleep(SETUP_S)
        self.handed_on.append(time.time())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_first_recording_of_a_run_times_only_the_upstream(tmp_path: Path) -> None:
    """No client set-up, connection or import is inside the timed window: the first
    recording's time to headers is the upstream's own delay, as later ones are.

    The set-up is made long (:class:`SlowSetup`); the window must lie between the moment the
    transport handed the request on and the moment the client had the headers (the kernel's
    receive timestamp), and cover the fake's own wait before its headers."""
    transport = SlowSetup()
    with (
        FakeUpstream() as fake,
        ServerThread(settings(tmp_path, fake.base_url), transport=transport) as server,
    ):
        got = exchange(server.base_url, body=ask("first of the run", stream=True))
        recorded = only_cassette(tmp_path)["interactions"][0]["response"]
    assert got.status == 200
    [seen] = fake.requests()
    [handed_on] = transport.handed_on
    assert seen.headers_at is not None
    ttfb = recorded["time_to_headers_ms"]
    assert ttfb <= (got.head - handed_on) * 1000 + CLOCKS_MS, (ttfb, got.ms(got.head))
    assert ttfb >= (seen.headers_at - seen.arrived_at) * 1000 - CLOCKS_MS
