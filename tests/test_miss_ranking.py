""" "Closest" is the closest: the same endpoint first, then the fewest differing fields, then
the fewest characters differing — as a table, and through the server with the shipped
cassettes and the real SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest

from conftest import CASSETTES, sdk
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.matching import MatchRules
from tapedeck.cassette.model import Cassette, Interaction, RecordedRequest, RecordedResponse
from tapedeck.server.runner import ServerThread

RULES = MatchRules()
ASKED = {
    "model": "m",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello there, unrecorded"}],
}


def body(**changes: Any) -> dict[str, Any]:
    out = {**ASKED, **changes}
    return {k: v for k, v in out.items() if v is not None}


def said(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def library(*requests: tuple[str, RecordedRequest]) -> CassetteLibrary:
    answer = RecordedResponse(200, (), body={"type": "message"})
    cassettes = [
        Cassette(name, f"{name}.yaml", (Interaction(request, answer, line=3),))
        for name, request in requests
    ]
    return CassetteLibrary(Path("."), cassettes, RULES)


def post(body: Any, path: str = "/v1/messages", method: str = "POST") -> RecordedRequest:
    return RecordedRequest(method, path, body=body)


@pytest.mark.parametrize(
    ("candidates", "closest"),
    [
        pytest.param(
            [
                ("a-haiku", post(body(messages=said("Write a haiku about autumn.")))),
                ("b-hello", post(body(messages=said("Hello")))),
            ],
            "b-hello",
            id="one field each: the smaller edit wins",
        ),
        pytest.param(
            [
                ("a-two-fields", post(body(max_tokens=255, model="n"))),
                ("b-one-field", post(body(messages=said("Something else entirely, quite long")))),
            ],
            "b-one-field",
            id="fewer fields win over a smaller edit",
        ),
        pytest.param(
            [
                ("a-other-path", post(ASKED, path="/v1/messages/count_tokens")),
                ("b-other-method", post(ASKED, method="PUT")),
                ("c-far", post(body(model="x", max_tokens=1, messages=said("Bye")))),
            ],
            "c-far",
            id="another endpoint comes last, however equal its body",
        ),
        pytest.param(
            [
                (
                    "a-missing-turn",
                    post(body(messages=[*said("Hello there, unrecorded"), *said("More")])),
                ),
                ("b-changed-word", post(body(messages=said("Hello there, recorded")))),
            ],
            "b-changed-word",
            id="a missing turn outweighs a changed word",
        ),
        pytest.param(
            [
                (
                    "a-beta",
                    RecordedRequest("POST", "/v1/messages", (), (("anthropic-beta", "x"),), ASKED),
                ),
                ("b-model", post(body(model="n"))),
            ],
            "b-model",
            id="a matched header counts as a field",
        ),
        pytest.param(
            [
                ("a-extra-field", post(body(temperature=0.5))),
                ("b-no-system", post(body(system="s"))),
                ("c-exact-but-model", post(body(model="mm"))),
            ],
            "c-exact-but-model",
            id="the smallest of equal field counts: 1 character",
        ),
    ],
)
def test_ranking(candidates: list[tuple[str, RecordedRequest]], closest: str) -> None:
    shape = RULES.shape("POST", "/v1/messages", [], [], ASKED)
    found = library(*candidates).closest(shape)
    assert found.entry is not None
    assert found.entry.cassette.name == closest, found.shown
    # The order of the candidates decides nothing here.
    again = library(*reversed(candidates)).closest(shape)
    assert again.entry is not None
    assert again.entry.cassette.name == closest


def test_a_tie_goes_to_the_first_by_name() -> None:
    shape = RULES.shape("POST", "/v1/messages", [], [], ASKED)
    candidates = [("b-second", post(body(max_tokens=257))), ("a-first", post(body(max_tokens=255)))]
    found = library(*candidates).closest(shape)
    assert found.entry is not None
    assert found.entry.cassette.name == "a-first"


def test_the_shipped_cassettes_name_streaming_hello(server: ServerThread) -> None:
    with sdk(server) as client, pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "Hello there, unrecorded"}],
        )
    message = caught.value.message
    assert "closest is streaming/hello (interaction 0, " in message, message
    assert f"{CASSETTES}/streaming/hello.yaml:12): " in message
    assert 'messages[0].content: "Hello there, unrecorded" != "Hello"; ' in message
    assert "overloaded" not in message
