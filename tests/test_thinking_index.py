"""The library's index of thinking blocks (``cassette/signatures.py``): validation checks a
thinking block sent back against it. It is made once and then follows each cassette
added, read again or replaced — a recording no longer makes the next request read every
evicted cassette's file again. Through a real server recording a thinking agent loop, and
a table for the index itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import agent_loop
from agent_loop import deck
from tapedeck.cassette.model import Interaction, RecordedRequest, RecordedResponse
from tapedeck.cassette.signatures import ThinkingIndex

ANTHROPIC = {"anthropic-version": "2023-06-01"}
FILLERS = 6


def _filler(root: Path, n: int) -> dict[str, Any]:
    """A cassette of about 36 kB (more than the bound below) answering its own question."""
    body = {
        "model": agent_loop.MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": f"filler {n}"}],
    }
    answer = {
        "id": f"msg_filler_{n}",
        "type": "message",
        "role": "assistant",
        "model": agent_loop.MODEL,
        "content": [{"type": "text", "text": "lorem ipsum " * 3_000}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 9},
    }
    interaction = {
        "request": {"method": "POST", "path": "/v1/messages", "body": body},
        "response": {"status": 200, "headers": {}, "body": answer},
    }
    document = {"version": 1, "interactions": [interaction]}
    (root / f"filler{n}.yaml").write_text(yaml.safe_dump(document))
    return body


@pytest.mark.one_process
def test_a_recording_does_not_make_thinking_checks_read_every_cassette(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    with deck(root, "new_episodes") as server, agent_loop.client_for(server) as client:
        agent_loop.hand_loop(client, thinking={"type": "enabled", "budget_tokens": 2048})
    fillers = [_filler(root, n) for n in range(FILLERS)]
    doc = yaml.safe_load((root / f"{agent_loop.CASSETTE}.yaml").read_text())
    step = next(
        i["request"]["body"]
        for i in doc["interactions"]
        if i["request"]["body"].get("thinking") and len(i["request"]["body"]["messages"]) == 3
    )
    with (
        deck(root, "new_episodes", library_max_bytes=2_000) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
        agent_loop.client_for(server, "recorded/new") as recorder,
    ):
        library = server.server.config.app.handler.library
        for body in fillers:  # each evicts the one before
            assert http.post("/v1/messages", json=body, headers=ANTHROPIC).status_code == 200
        first = http.post("/v1/messages", json=step, headers=ANTHROPIC)  # the index is made
        for body in fillers:
            assert http.post("/v1/messages", json=body, headers=ANTHROPIC).status_code == 200
        evicted = set(library._lazy.evicted)
        reads: list[str] = []  # the files read again from here on
        read_one = library._lazy._load_one

        def counted(path: Path, name: str, display: str) -> Any:
            reads.append(name)
            return read_one(path, name, display)

        library._lazy._load_one = counted
        # Another loop recorded (its system prompt is new): a recording per call, and each
        # call's thinking blocks checked.
        agent_loop.hand_loop(
            recorder, thinking={"type": "enabled", "budget_tokens": 2048}, system="Be brief."
        )
        assert library.version >= 2
        again = http.post("/v1/messages", json=step, headers=ANTHROPIC)
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert len(evicted) >= FILLERS  # the fillers, and the loop's cassette
    # Only the cassette that answered was read again, not every evicted one after each
    # recording.
    assert reads == [agent_loop.CASSETTE]


def _interaction(signature: str, text: str) -> Interaction:
    block = {"type": "thinking", "signature": signature, "thinking": text}
    body = {"messages": [{"role": "assistant", "content": [block]}]}
    return Interaction(RecordedRequest("POST", "/v1/messages", body=body), _RESPONSE)


_RESPONSE = RecordedResponse(200, ())


@pytest.mark.parametrize(
    ("steps", "asked", "served"),
    [
        ([("add", "a", "s1", "t1")], ("s1", "t1"), True),
        ([("add", "a", "s1", "t1")], ("s1", "t2"), False),  # the text changed
        ([("add", "a", "s1", "t1")], ("s2", "t1"), False),  # never served
        ([("add", "a", "s1", "t1"), ("remove", "a")], ("s1", "t1"), False),
        # Held by two cassettes: one leaving does not forget the other's.
        ([("add", "a", "s1", "t1"), ("add", "b", "s1", "t1"), ("remove", "a")], ("s1", "t1"), True),
        # A cassette read again with other answers: its old blocks go.
        ([("add", "a", "s1", "t1"), ("add", "a", "s2", "t2")], ("s1", "t1"), False),
        ([("add", "a", "s1", "t1"), ("add", "a", "s2", "t2")], ("s2", "t2"), True),
    ],
)
def test_the_index_follows_cassettes(
    steps: list[tuple[str, ...]], asked: tuple[str, str], served: bool
) -> None:
    index = ThinkingIndex()
    for step in steps:
        if step[0] == "add":
            index.add(step[1], [_interaction(step[2], step[3])])
        else:
            index.remove(step[1])
    assert index.served(*asked) is served
