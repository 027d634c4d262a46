"""The upstream client: made when the server starts, with a transport that can be replaced,
and timing the answer from the moment the request is sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anthropic
import httpx

from conftest import sdk
from fake_upstream import HEADERS_DELAY_S, FakeUpstream, ask
from record_helpers import only_cassette
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

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        await asyncio.sleep(0.1)  # the API thinking before its headers
        return httpx.Response(200, json=MESSAGE, headers={"request-id": "req_mock"})

    upstream = httpx.MockTransport(answer)
    with (
        ServerThread(settings(tmp_path, "http://upstream.invalid"), transport=upstream) as server,
        sdk(server) as client,
    ):
        message = client.messages.create(**ask("through the mock"))

    assert message.content[0].type == "text"
    assert message.content[0].text == "from the mock transport"
    assert seen == [ask("through the mock")]
    recorded = only_cassette(tmp_path)["interactions"][0]["response"]
    assert recorded["body"] == MESSAGE
    assert 95 <= recorded["time_to_headers_ms"] < 1000  # the loop clock: ~1 ms early


def test_the_first_recording_of_a_run_times_only_the_upstream(tmp_path: Path) -> None:
    """No client set-up, connection or import is inside the timed window: the first
    recording's time to headers is the upstream's own delay, as later ones are."""
    with FakeUpstream() as fake, ServerThread(settings(tmp_path, fake.base_url)) as server:
        with anthropic.Anthropic(base_url=server.base_url, api_key="k", max_retries=0) as client:
            client.messages.create(**ask("first of the run"))
        recorded = only_cassette(tmp_path)["interactions"][0]["response"]

    delay_ms = HEADERS_DELAY_S * 1000
    assert delay_ms <= recorded["time_to_headers_ms"] < delay_ms + 60
