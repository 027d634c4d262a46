"""Message threads, as table tests: a request rebuilt into the conversation it continues, the
threads beta flag left out of matching, and a library that follows a recorded thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.matching import MatchRules
from tapedeck.cassette.model import Cassette, Interaction, RecordedRequest, RecordedResponse
from tapedeck.cassette.threads import Thread, continues, rebuilt

PATH = "/v1/messages"
ASKED = [{"role": "user", "content": "Hi"}]
HELD = Thread(
    ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}),
    "Be brief.",
    [{"name": "f"}],
)


def lookup(reply_id: str) -> Thread | None:
    return HELD if reply_id == "msg_1" else None


def cont(previous: Any = "msg_1", **fields: Any) -> dict[str, Any]:
    thread = {"type": "continue", "previous_message_id": previous}
    return {
        "model": "m",
        "messages": [{"role": "user", "content": "More"}],
        "thread": thread,
        **fields,
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "m", "messages": ASKED}, {"model": "m", "messages": ASKED}),
        (
            {"model": "m", "messages": ASKED, "thread": {"type": "create"}},
            {"model": "m", "messages": ASKED},
        ),
        (
            cont(),
            {
                "model": "m",
                "messages": [*HELD.messages, {"role": "user", "content": "More"}],
                "system": "Be brief.",
                "tools": [{"name": "f"}],
            },
        ),
        (cont("msg_unknown"), cont("msg_unknown")),  # not known: as sent
        (cont(5), cont(5)),
        ("not a body", "not a body"),
    ],
    ids=["no-thread", "create", "continue", "unknown", "bad-id", "not-a-mapping"],
)
def test_rebuilt(body: Any, expected: Any) -> None:
    assert rebuilt(body, lookup) == expected


def test_continues() -> None:
    assert continues(cont()) == "msg_1"
    assert continues({"thread": {"type": "create"}}) is None
    assert continues({"thread": "continue"}) is None
    assert continues(None) is None


@pytest.mark.parametrize(
    ("sent", "recorded", "same"),
    [
        ("message-threads-2026-08-12", None, True),
        ("message-threads-2026-08-12, files-api-2025-04-14", "files-api-2025-04-14", True),
        ("files-api-2025-04-14", None, False),
    ],
)
def test_the_threads_beta_is_not_matched(sent: str, recorded: str | None, same: bool) -> None:
    rules = MatchRules()

    def shape(beta: str | None) -> str:
        headers = [("anthropic-beta", beta)] if beta is not None else []
        return rules.shape("POST", "/v1/messages", [], headers, {"a": 1}).key

    assert (shape(sent) == shape(recorded)) is same


def _stream_reply(reply_id: str, text: str) -> RecordedResponse:
    from tapedeck.cassette.message_stream import synthesize
    from tapedeck.cassette.model import RecordedEvent

    message = {
        "id": reply_id,
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    events = tuple(RecordedEvent(n, d, i) for i, (n, d) in enumerate(synthesize(message)))
    return RecordedResponse(200, (), events=events)


def test_a_library_matches_a_recorded_thread_on_its_whole_conversation() -> None:
    first = {"model": "m", "messages": ASKED, "system": "S", "thread": {"type": "create"}}
    second = {
        "model": "m",
        "messages": [{"role": "user", "content": "More"}],
        "thread": {"type": "continue", "previous_message_id": "msg_a"},
    }
    cassette = Cassette(
        "t",
        Path("t.yaml"),
        (
            Interaction(
                RecordedRequest("POST", "/v1/messages", body=first), _stream_reply("msg_a", "Hello")
            ),
            Interaction(
                RecordedRequest("POST", "/v1/messages", body=second), _stream_reply("msg_b", "Bye")
            ),
        ),
    )
    library = CassetteLibrary(Path("."), [cassette], MatchRules())
    whole = {
        "model": "m",
        "system": "S",
        "messages": [
            *ASKED,
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "user", "content": "More"},
        ],
    }
    shape = library.rules.shape("POST", "/v1/messages", [], [], whole)
    hit = library.find(shape)
    assert hit is not None
    assert [e.index for e in hit.entries] == [1]
    assert library.conversation("msg_b") == Thread(
        (*whole["messages"], {"role": "assistant", "content": [{"type": "text", "text": "Bye"}]}),
        "S",
        None,
    )
    assert library.conversation("msg_nobody") is None
