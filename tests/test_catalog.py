"""The library as JSON (``/_tapedeck/cassettes``), which the web view reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import CASSETTES, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import proxy
from tapedeck.cassette.message_stream import assemble
from tapedeck.server.runner import ServerThread


def get(server: ServerThread, path: str) -> Any:
    response = httpx.get(f"{server.base_url}/_tapedeck{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_cassette_in_a_line(server: ServerThread) -> None:
    lines = {c["name"]: c for c in get(server, "/cassettes")["cassettes"]}
    assert sorted(lines) == sorted(server.library.cassettes)
    hello = lines["streaming/hello"]
    assert hello["interactions"] == 1
    assert hello["kinds"] == ["stream"]
    assert hello["models"] == ["claude-sonnet-4-5"]
    assert hello["events"] == 8
    assert hello["recorded_at"] is None  # built by hand
    assert hello["size"] == (CASSETTES / "streaming" / "hello.yaml").stat().st_size
    assert hello["duration_ms"] > 0
    assert lines["errors/overloaded-529"]["kinds"] == ["error"]
    assert lines["errors/stream-overloaded"]["kinds"] == ["error"]


def test_one_cassette_event_by_event(server: ServerThread) -> None:
    found = get(server, "/cassettes/streaming/tool-use")
    assert found["cassette"]["name"] == "streaming/tool-use"
    (interaction,) = found["interactions"]
    recorded = server.library.cassettes["streaming/tool-use"].interactions[0]
    request, response = interaction["request"], interaction["response"]
    assert request["tools"] == ["get_weather"]
    assert request["last_user"] == "What is the weather like in San Francisco?"
    assert request["stream"] is True
    assert response["time_to_headers_ms"] == recorded.response.time_to_headers_ms
    events = response["events"]
    assert [e["at_ms"] for e in events] == [e.at_ms for e in recorded.response.events or ()]
    assert [e["event"] for e in events] == [e.event for e in recorded.response.events or ()]
    assert {e["block"] for e in events if e["event"].startswith("content_block")} == {
        "text",
        "tool_use",
    }
    assert {e["delta"] for e in events if e["delta"]} == {"text_delta", "input_json_delta"}
    assert response["end"] == "complete"
    pairs = [(e.event, e.data) for e in recorded.response.events or ()]
    assert response["message"] == assemble(pairs)
    assert response["assemble_error"] is None


@pytest.mark.parametrize(
    ("name", "kind", "end", "message"),
    [
        ("errors/stream-overloaded", "error", "error", True),
        ("errors/overloaded-529", "error", "error", True),
    ],
)
def test_errors(server: ServerThread, name: str, kind: str, end: str, message: bool) -> None:
    (interaction,) = get(server, f"/cassettes/{name}")["interactions"]
    assert interaction["response"]["kind"] == kind
    assert interaction["response"]["end"] == end
    assert (interaction["response"]["message"] is not None) is message


def test_unknown_and_outside_names_are_not_found(server: ServerThread) -> None:
    for name in ("nowhere", "../README", "%2e%2e/README", "streaming/../../README"):
        response = httpx.get(f"{server.base_url}/_tapedeck/cassettes/{name}", timeout=10)
        assert response.status_code == 404, name
        assert response.json()["error"]["type"] == "not_found_error"


def test_a_recording_is_listed_at_once(
    make_server: MakeServer, tmp_path: Path, fake: FakeUpstream
) -> None:
    with proxy(make_server, tmp_path, "new_episodes", fake) as s:
        assert get(s, "/cassettes") == {"cassettes": []}
        with sdk(s) as client:
            client.messages.create(**ask("listed at once"))
        (line,) = get(s, "/cassettes")["cassettes"]
        assert line["kinds"] == ["json"]
        assert line["recorded_at"] is not None
        (interaction,) = get(s, f"/cassettes/{line['name']}")["interactions"]
    assert interaction["response"]["message"]["content"][0]["text"] == "listed at once"
