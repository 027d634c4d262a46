"""Every shipped example cassette replayed to the official SDK, over a real socket.

The expected results are built here, independently of tapedeck, from the cassette files
themselves: the events are folded into a message the way the Messages API defines it, and
the SDK's assembled message must equal that.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from conftest import CASSETTES, MakeServer, sdk

STREAMS = [
    "streaming/hello",
    "streaming/tool-use",
    "streaming/extended-thinking",
    "streaming/web-search",
]
ERROR_STREAM = "errors/stream-overloaded"
OVERLOADED_529 = "errors/overloaded-529"
ALL_STREAMS = [*STREAMS, ERROR_STREAM]


# --- reading the cassette files, independently of tapedeck --------------------------------


def cassette(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


def interaction(name: str) -> dict[str, Any]:
    first: dict[str, Any] = cassette(name)["interactions"][0]
    return first


def request_kwargs(name: str) -> dict[str, Any]:
    """The cassette's request body as SDK keyword arguments, without ``stream``."""
    body = copy.deepcopy(interaction(name)["request"]["body"])
    body.pop("stream", None)
    return body


def events(name: str) -> list[dict[str, Any]]:
    evs: list[dict[str, Any]] = interaction(name)["response"]["events"]
    return evs


def non_ping(name: str) -> list[dict[str, Any]]:
    return [e for e in events(name) if e["event"] != "ping"]


def recorded_text(name: str) -> str:
    return "".join(
        e["data"]["delta"]["text"]
        for e in events(name)
        if e["event"] == "content_block_delta" and e["data"]["delta"]["type"] == "text_delta"
    )


def fold(evs: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a stream of events describes, per the Messages API streaming format."""
    message: dict[str, Any] | None = None
    json_bufs: dict[int, str] = {}
    for e in evs:
        data = e["data"]
        kind = e["event"]
        if kind == "message_start":
            message = copy.deepcopy(data["message"])
            message["content"] = []
            continue
        if kind in ("ping", "message_stop", "error"):
            continue
        assert message is not None, f"{kind} before message_start"
        if kind == "content_block_start":
            assert data["index"] == len(message["content"])
            message["content"].append(copy.deepcopy(data["content_block"]))
        elif kind == "content_block_delta":
            index = data["index"]
            block = message["content"][index]
            delta = data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            elif delta["type"] == "input_json_delta":
                json_bufs[index] = json_bufs.get(index, "") + delta["partial_json"]
            else:  # pragma: no cover - the examples use no other delta type
                raise AssertionError(f"unexpected delta {delta['type']}")
        elif kind == "message_delta":
            message["stop_reason"] = data["delta"]["stop_reason"]
            message["stop_sequence"] = data["delta"]["stop_sequence"]
            for key, value in data["usage"].items():
                if value is not None:
                    message["usage"][key] = value
    assert message is not None
    for index, buf in json_bufs.items():
        if buf:
            message["content"][index]["input"] = json.loads(buf)
    return message


def assert_message_equals_cassette(final: Any, name: str) -> None:
    expected = fold(events(name))
    got = final.model_dump()
    for key in ("id", "type", "role", "model", "stop_reason", "stop_sequence"):
        assert got[key] == expected[key], key
    assert len(got["content"]) == len(expected["content"])
    for i, (have, want) in enumerate(zip(got["content"], expected["content"], strict=True)):
        for key, value in want.items():
            assert have[key] == value, f"content[{i}].{key}"
    for key, value in expected["usage"].items():
        assert got["usage"][key] == value, f"usage.{key}"
    # Sanity: the fold really produced content (the examples are not trivial).
    assert expected["content"]
    assert expected["usage"]["output_tokens"] > 1


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the fold itself, on known values -----------------------------------------------------


def test_fold_of_shipped_examples_gives_the_documented_results() -> None:
    hello = fold(events("streaming/hello"))
    assert hello["content"] == [{"type": "text", "text": "Hello!"}]
    assert hello["stop_reason"] == "end_turn"
    assert hello["usage"]["output_tokens"] == 15
    tool = fold(events("streaming/tool-use"))
    assert tool["content"][1]["input"] == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert tool["stop_reason"] == "tool_use"
    thinking = fold(events("streaming/extended-thinking"))
    assert thinking["content"][0]["thinking"].endswith("10,800 + 1,350 + 81 = 12,231")
    assert thinking["content"][0]["signature"].startswith("EqQB")
    search = fold(events("streaming/web-search"))
    assert search["content"][1]["input"] == {"query": "weather NYC today"}
    assert search["content"][2]["type"] == "web_search_tool_result"
    assert len(search["content"][2]["content"]) == 2


# --- sync SDK -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_stream_helper_assembles_the_recorded_message(
    client: anthropic.Anthropic, name: str
) -> None:
    with client.messages.stream(**request_kwargs(name)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        assert stream.request_id == interaction(name)["response"]["headers"]["request-id"]
    assert text == recorded_text(name)
    assert text  # every example has some text
    assert_message_equals_cassette(final, name)


@pytest.mark.parametrize("name", STREAMS)
def test_raw_events_are_the_recorded_events_without_pings(
    client: anthropic.Anthropic, name: str
) -> None:
    with client.messages.create(**request_kwargs(name), stream=True) as stream:
        got = list(stream)
    assert [e.type for e in got] == [e["event"] for e in non_ping(name)]
    # The data of each event, exactly as recorded (only fields that were sent are set).
    assert [e.to_dict() for e in got] == [e["data"] for e in non_ping(name)]


def read_text(manager: Any, into: list[str]) -> None:
    """Enter a ``messages.stream(...)`` manager and read its text into ``into``."""
    with manager as stream:
        into.extend(stream.text_stream)


def read_events(stream: Any, into: list[str]) -> None:
    """Read a raw event stream, recording each event's type into ``into``."""
    with stream:
        into.extend(event.type for event in stream)


async def aread_text(manager: Any, into: list[str]) -> None:
    async with manager as stream:
        async for text in stream.text_stream:
            into.append(text)


async def aread_events(stream: Any, into: list[str]) -> None:
    async with stream:
        async for event in stream:
            into.append(event.type)


def test_in_stream_error_raises_status_error_with_status_200(client: anthropic.Anthropic) -> None:
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        read_text(client.messages.stream(**request_kwargs(ERROR_STREAM)), received)
    error = caught.value
    recorded_error = events(ERROR_STREAM)[-1]
    assert recorded_error["event"] == "error"
    # Status 200 maps to no specific subclass: the plain APIStatusError.
    assert type(error) is anthropic.APIStatusError
    assert error.status_code == 200
    assert error.body == recorded_error["data"]
    assert isinstance(error.body, dict)
    assert error.body["error"]["type"] == "overloaded_error"
    assert error.type == "overloaded_error"
    assert "".join(received) == recorded_text(ERROR_STREAM)
    assert "".join(received) == (
        "Once upon a time, in a small village at the edge of a great forest, there lived a"
    )


def test_in_stream_error_raw_events_then_error(client: anthropic.Anthropic) -> None:
    got: list[str] = []
    stream = client.messages.create(**request_kwargs(ERROR_STREAM), stream=True)
    with pytest.raises(anthropic.APIStatusError) as caught:
        read_events(stream, got)
    expected = [e["event"] for e in non_ping(ERROR_STREAM)]
    assert expected[-1] == "error"
    assert got == expected[:-1]
    assert caught.value.status_code == 200
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_non_stream_529_raises_overloaded_error(client: anthropic.Anthropic) -> None:
    recorded = interaction(OVERLOADED_529)["response"]
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(**request_kwargs(OVERLOADED_529))
    error = caught.value
    assert error.status_code == 529
    assert error.body == recorded["body"]
    assert isinstance(error.body, dict)
    assert error.body["error"]["type"] == "overloaded_error"
    assert error.type == "overloaded_error"
    assert error.request_id == recorded["headers"]["request-id"]
    assert error.response.headers["x-should-retry"] == "true"
    assert error.response.headers["x-tapedeck-cassette"] == OVERLOADED_529
    assert error.response.headers["x-tapedeck-source"] == "cassette"
    assert error.response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("name", ALL_STREAMS)
def test_streaming_response_carries_tapedeck_headers(
    client: anthropic.Anthropic, name: str
) -> None:
    with client.messages.with_streaming_response.create(
        **request_kwargs(name), stream=True
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-tapedeck-cassette"] == name
        assert response.headers["x-tapedeck-source"] == "cassette"
        assert (
            response.headers["request-id"] == interaction(name)["response"]["headers"]["request-id"]
        )
        raw = list(anthropic.Stream.raw_events(response.http_response))
    # Every recorded event arrives, pings and the error event included, in order.
    assert [(e.event, json.loads(e.data)) for e in raw] == [
        (e["event"], e["data"]) for e in events(name)
    ]


def test_raw_response_carries_tapedeck_headers(client: anthropic.Anthropic) -> None:
    response = client.messages.with_raw_response.create(
        **request_kwargs("streaming/hello"), stream=True
    )
    stream = response.parse()
    stream.close()
    assert response.headers["x-tapedeck-cassette"] == "streaming/hello"
    assert response.headers["x-tapedeck-source"] == "cassette"
    assert response.retries_taken == 0


# --- async SDK ----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("name", STREAMS)
async def test_async_stream_helper_assembles_the_recorded_message(
    async_client: anthropic.AsyncAnthropic, name: str
) -> None:
    async with async_client.messages.stream(**request_kwargs(name)) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == recorded_text(name)
    assert_message_equals_cassette(final, name)


@pytest.mark.anyio
@pytest.mark.parametrize("name", STREAMS)
async def test_async_raw_events_are_the_recorded_events_without_pings(
    async_client: anthropic.AsyncAnthropic, name: str
) -> None:
    stream = await async_client.messages.create(**request_kwargs(name), stream=True)
    async with stream:
        got = [e async for e in stream]
    assert [e.type for e in got] == [e["event"] for e in non_ping(name)]
    assert [e.to_dict() for e in got] == [e["data"] for e in non_ping(name)]


@pytest.mark.anyio
async def test_async_in_stream_error(async_client: anthropic.AsyncAnthropic) -> None:
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await aread_text(async_client.messages.stream(**request_kwargs(ERROR_STREAM)), received)
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert "".join(received) == recorded_text(ERROR_STREAM)

    got: list[str] = []
    stream2 = await async_client.messages.create(**request_kwargs(ERROR_STREAM), stream=True)
    with pytest.raises(anthropic.APIStatusError) as caught2:
        await aread_events(stream2, got)
    assert got == [e["event"] for e in non_ping(ERROR_STREAM)][:-1]
    assert caught2.value.status_code == 200


@pytest.mark.anyio
async def test_async_non_stream_529(async_client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        await async_client.messages.create(**request_kwargs(OVERLOADED_529))
    assert caught.value.status_code == 529
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert caught.value.response.headers["x-should-retry"] == "true"


# --- what takes part in matching ----------------------------------------------------------

HELLO_LIKE = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
{headers}      body:
        model: claude-sonnet-4-5
        max_tokens: 64
        stream: true
{extra_body}
        messages:
          - {{role: user, content: "Match me"}}
    response:
      status: 200
      events:
        - event: message_start
          at_ms: 0
          data:
            type: message_start
            message:
              id: msg_match
              type: message
              role: assistant
              content: []
              model: claude-sonnet-4-5-20250929
              stop_reason: null
              stop_sequence: null
              usage: {{input_tokens: 3, output_tokens: 1}}
        - event: content_block_start
          at_ms: 1
          data: {{type: content_block_start, index: 0, content_block: {{type: text, text: ""}}}}
        - event: content_block_delta
          at_ms: 2
          data:
            type: content_block_delta
            index: 0
            delta: {{type: text_delta, text: "matched"}}
        - event: content_block_stop
          at_ms: 3
          data: {{type: content_block_stop, index: 0}}
        - event: message_delta
          at_ms: 4
          data:
            type: message_delta
            delta: {{stop_reason: end_turn, stop_sequence: null}}
            usage: {{output_tokens: 2}}
        - event: message_stop
          at_ms: 5
          data: {{type: message_stop}}
"""

MATCH_KWARGS: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Match me"}],
}


def hello_like(path: Path, headers: dict[str, str], extra_body: str = "") -> None:
    block = "".join(f"        {k}: {json.dumps(v)}\n" for k, v in headers.items())
    if block:
        block = "      headers:\n" + block
    write(path, HELLO_LIKE.format(headers=block, extra_body=extra_body))


def streamed_text(client: anthropic.Anthropic, **kwargs: Any) -> str:
    with client.messages.stream(**{**MATCH_KWARGS, **kwargs}) as stream:
        return "".join(stream.text_stream)


def test_old_sdk_headers_in_cassette_still_match_this_sdk(
    tmp_path: Path, make_server: MakeServer
) -> None:
    with anthropic.Anthropic(api_key="x") as probe:
        assert probe.default_headers["anthropic-version"] != "2023-06-01"
    hello_like(
        tmp_path / "old-sdk.yaml",
        {
            "anthropic-version": "2023-06-01",
            "x-api-key": "sk-ant-old-recording",
            "user-agent": "Anthropic/Python 0.40.0",
            "x-stainless-retry-count": "0",
            "x-stainless-package-version": "0.40.0",
            "content-type": "application/json",
        },
    )
    with make_server(tmp_path) as server, sdk(server) as client:
        assert streamed_text(client) == "matched"


def test_anthropic_beta_must_match_as_a_set(tmp_path: Path, make_server: MakeServer) -> None:
    hello_like(
        tmp_path / "beta.yaml", {"anthropic-beta": "tools-2024-04-04,prompt-caching-2024-07-31"}
    )
    with make_server(tmp_path) as server, sdk(server) as client:
        same_set = {"anthropic-beta": "prompt-caching-2024-07-31, tools-2024-04-04"}
        assert streamed_text(client, extra_headers=same_set) == "matched"
        assert (
            streamed_text(
                client,
                extra_headers={"anthropic-beta": "tools-2024-04-04,prompt-caching-2024-07-31"},
            )
            == "matched"
        )
        for betas in ("tools-2024-04-04", "tools-2024-04-04,other-2025-01-01"):
            with pytest.raises(anthropic.NotFoundError) as caught:
                streamed_text(client, extra_headers={"anthropic-beta": betas})
            assert isinstance(caught.value.body, dict)
            message = caught.value.body["error"]["message"]
            assert message.startswith("tapedeck: no cassette matches")
            assert "header anthropic-beta" in message
        with pytest.raises(anthropic.NotFoundError):
            streamed_text(client)  # no beta header at all


def test_metadata_user_id_is_ignored(tmp_path: Path, make_server: MakeServer) -> None:
    hello_like(
        tmp_path / "meta.yaml",
        {},
        extra_body="        metadata: {user_id: recorded-user-123}",
    )
    with make_server(tmp_path) as server, sdk(server) as client:
        assert streamed_text(client, metadata={"user_id": "someone-else-456"}) == "matched"
        assert streamed_text(client, metadata={"user_id": "recorded-user-123"}) == "matched"
        assert streamed_text(client) == "matched"
        # Only user_id is ignored: a different prompt is still a miss.
        with pytest.raises(anthropic.NotFoundError):
            streamed_text(
                client,
                metadata={"user_id": "x"},
                messages=[{"role": "user", "content": "Something else"}],
            )
