"""One recording, both shapes, and cassettes that match on chosen fields — over a real
socket with the official SDK."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from conftest import CASSETTES, MakeServer, sdk

STREAMED = [
    "streaming/hello",
    "streaming/tool-use",
    "streaming/extended-thinking",
    "streaming/web-search",
]


def request_kwargs(name: str) -> dict[str, Any]:
    document = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())
    body: dict[str, Any] = copy.deepcopy(document["interactions"][0]["request"]["body"])
    body.pop("stream", None)
    return body


@pytest.mark.parametrize("name", STREAMED)
def test_a_streamed_recording_answers_a_json_request_with_the_same_message(
    client: anthropic.Anthropic, name: str
) -> None:
    kwargs = request_kwargs(name)
    with client.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    raw = client.messages.with_raw_response.create(**kwargs)
    created = raw.parse()
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-tapedeck-cassette"] == name
    assert created.model_dump(exclude_none=True) == streamed.model_dump(exclude_none=True)


def test_a_stream_ending_in_an_error_answers_json_with_that_error(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**request_kwargs("errors/stream-overloaded"))
    assert caught.value.status_code == 529
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_a_stream_that_makes_no_message_answers_json_with_an_error_naming_the_cassette(
    tmp_path: Path, make_server: MakeServer, tapedeck_log: Any
) -> None:
    """A stream that loads but whose events do not assemble (tool input that is not JSON;
    an event order the SDKs cannot assemble is refused when the library loads): the JSON
    request gets an API-shaped error naming the cassette, and the log has no traceback."""
    (tmp_path / "broken.yaml").write_text(
        "version: 1\ninteractions:\n  - request:\n      method: POST\n"
        "      path: /v1/messages\n      body: {model: m, max_tokens: 5, stream: true, "
        "messages: [{role: user, content: broken}]}\n    response:\n      status: 200\n"
        "      events:\n"
        "        - {event: message_start, at_ms: 0, data: {type: message_start, "
        "message: {id: m1, type: message, role: assistant, content: [], model: m}}}\n"
        "        - {event: content_block_start, at_ms: 0, data: {type: content_block_start, "
        "index: 0, content_block: {type: tool_use, id: toolu_1, name: f, input: {}}}}\n"
        "        - {event: content_block_delta, at_ms: 0, data: {type: content_block_delta, "
        "index: 0, delta: {type: input_json_delta, partial_json: '{not json'}}}\n"
        "        - {event: content_block_stop, at_ms: 0, data: {type: content_block_stop, "
        "index: 0}}\n"
    )
    ask = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "broken"}]}
    with make_server(tmp_path) as server, sdk(server) as client:
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.create(**ask)
        streamed = client.messages.create(**ask, stream=True)  # the recording still streams
        assert next(iter(streamed)).type == "message_start"
        streamed.close()
    assert isinstance(caught.value.body, dict)
    message = caught.value.body["error"]["message"]
    assert message.startswith(
        f"tapedeck: cassette 'broken' ({tmp_path / 'broken.yaml'}:3) cannot be answered as JSON: "
    )
    assert "block 0" in message
    assert "tapedeck lint" in message
    assert not [r for r in tapedeck_log.records if r.exc_info]


def test_a_recorded_http_error_answers_a_stream_request_as_recorded(
    client: anthropic.Anthropic,
) -> None:
    kwargs = request_kwargs("errors/overloaded-529")
    with pytest.raises(anthropic.OverloadedError), client.messages.stream(**kwargs) as stream:
        stream.until_done()


JSON_CASSETTE = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: claude-sonnet-4-5
        max_tokens: 100
        messages: [{role: user, content: Weather?}]
    response:
      status: 200
      headers: {content-type: application/json, request-id: req_json}
      body:
        id: msg_json
        type: message
        role: assistant
        model: claude-sonnet-4-5
        content:
          - {type: text, text: "Let me check the weather for you in San Francisco."}
          - {type: tool_use, id: toolu_1, name: get_weather,
             input: {location: "San Francisco, CA", unit: celsius}}
        stop_reason: tool_use
        stop_sequence: null
        usage: {input_tokens: 20, output_tokens: 31}
"""


def test_a_json_recording_answers_a_stream_request_with_a_synthesized_stream(
    tmp_path: Path, make_server: MakeServer
) -> None:
    (tmp_path / "weather.yaml").write_text(JSON_CASSETTE)
    kwargs: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Weather?"}],
    }
    with make_server(tmp_path) as s, sdk(s) as client:
        created = client.messages.create(**kwargs)
        names = [event.type for event in client.messages.create(**kwargs, stream=True)]
        with client.messages.stream(**kwargs) as stream:
            deltas = list(stream.text_stream)
            streamed = stream.get_final_message()
    assert streamed.model_dump(exclude_none=True) == created.model_dump(exclude_none=True)
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert len(deltas) > 1  # the text arrives in pieces, as a real stream's would
    assert "".join(deltas) == "Let me check the weather for you in San Francisco."
    tool = streamed.content[1]
    assert tool.type == "tool_use"
    assert tool.input == {"location": "San Francisco, CA", "unit": "celsius"}


MATCH_CASSETTE = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      match: [messages, system]
      body:
        model: any-model
        max_tokens: 1
        system: Be brief.
        messages: [{role: user, content: Hi there}]
    response:
      status: 200
      body:
        id: msg_match
        type: message
        role: assistant
        model: any-model
        content: [{type: text, text: Hello!}]
        stop_reason: end_turn
        stop_sequence: null
        usage: {input_tokens: 3, output_tokens: 2}
"""


def test_match_fields_ignore_model_and_sampling(tmp_path: Path, make_server: MakeServer) -> None:
    (tmp_path / "hand.yaml").write_text(MATCH_CASSETTE)
    conversation: dict[str, Any] = {
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi there"}],
    }
    with make_server(tmp_path) as s, sdk(s) as client:
        for model, max_tokens, extra in [
            ("claude-sonnet-4-5", 1024, {}),
            (
                "claude-haiku-4-5",
                16,
                # Sampling parameters exist up to API version 2023-06-01 (removed after).
                {
                    "extra_body": {"temperature": 0.2, "top_p": 0.9},
                    "extra_headers": {"anthropic-version": "2023-06-01"},
                },
            ),
        ]:
            message = client.messages.create(
                model=model, max_tokens=max_tokens, **conversation, **extra
            )
            assert message.content[0].type == "text"
            assert message.content[0].text == "Hello!"
        with client.messages.stream(model="m", max_tokens=5, **conversation) as stream:
            assert stream.get_final_text() == "Hello!"
        with pytest.raises(anthropic.NotFoundError) as caught:
            client.messages.create(
                model="m",
                max_tokens=5,
                system="Be brief.",
                messages=[{"role": "user", "content": "Bye"}],
            )
    assert 'messages[0].content: "Bye" != "Hi there"' in str(caught.value)
    assert "hand" in str(caught.value)


def test_a_whole_request_match_wins_over_a_field_match(
    tmp_path: Path, make_server: MakeServer
) -> None:
    (tmp_path / "a-hand.yaml").write_text(MATCH_CASSETTE)
    exact = MATCH_CASSETTE.replace("      match: [messages, system]\n", "").replace(
        "Hello!", "Exactly!"
    )
    (tmp_path / "z-exact.yaml").write_text(exact)
    conversation: dict[str, Any] = {
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi there"}],
    }
    with make_server(tmp_path) as s, sdk(s) as client:
        same = client.messages.create(model="any-model", max_tokens=1, **conversation)
        other = client.messages.create(model="claude-sonnet-4-5", max_tokens=9, **conversation)
    assert same.content[0].type == other.content[0].type == "text"
    assert same.content[0].text == "Exactly!"
    assert other.content[0].text == "Hello!"


def test_a_bad_match_field_is_a_cassette_error(tmp_path: Path) -> None:
    from tapedeck.cassette.load import parse_cassette
    from tapedeck.errors import CassetteError

    text = MATCH_CASSETTE.replace("match: [messages, system]", "match: []")
    with pytest.raises(CassetteError) as caught:
        parse_cassette(text, "hand.yaml", "hand")
    assert str(caught.value).startswith("hand.yaml:6: interactions[0].request.match: ")
