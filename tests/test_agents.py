"""Agent loops recorded whole and replayed with the upstream gone, through the real server
and the official SDK: parallel tool calls, thinking carried from turn to turn, a paused turn
continued, the SDK's own tool runner, calls that share a user message, volatile tool results.

The program is :mod:`agent_loop`, the upstream :mod:`agent_upstream`, a stand-in that plays
an agent. Each test records in ``new_episodes`` into its own cassette, then replays in
``none`` mode with no upstream at all, and compares the program's whole transcript.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

import agent_upstream
from agent_loop import (
    CASSETTE,
    MODEL,
    QUESTION,
    TIME_RULE,
    TOOLS,
    WEB_SEARCH,
    client_for,
    clock_tools,
    deck,
    hand_loop,
    sdk_runner,
)
from conftest import LogLines
from tapedeck.cassette.normalize import Normalize


def interactions(root: Path, cassette: str = CASSETTE) -> list[dict[str, Any]]:
    doc = yaml.safe_load((root / f"{cassette}.yaml").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = doc["interactions"]
    return found


def conversation_lengths(root: Path) -> list[int]:
    return [len(i["request"]["body"]["messages"]) for i in interactions(root)]


def stop_reasons(transcript: dict[str, Any]) -> list[str]:
    return [a["stop_reason"] for a in transcript["answers"]]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_tool_loop_is_recorded_whole_and_replays_identically(
    tmp_path: Path, stream: bool, tapedeck_log: LogLines
) -> None:
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = hand_loop(client, stream=stream)
    assert stop_reasons(recorded) == ["tool_use", "tool_use", "end_turn"]
    assert len(agent_upstream.CALLS) == 3
    assert [b["name"] for b in recorded["answers"][0]["content"][1:]] == ["get_weather"] * 2
    # Every step its own interaction, in order, matched on its whole conversation.
    assert conversation_lengths(tmp_path) == [1, 3, 5]
    assert all("match" not in i["request"] for i in interactions(tmp_path))

    with deck(tmp_path, "none") as server, client_for(server) as client:
        replayed = hand_loop(client, stream=stream)
    assert replayed == recorded
    assert tapedeck_log.matching("breaks the API's rules") == []


def test_thinking_and_signatures_carried_through_a_loop(tmp_path: Path) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = hand_loop(client, stream=True, thinking=thinking)
    firsts = [a["content"][0] for a in recorded["answers"]]
    assert [(b["type"], b["signature"]) for b in firsts] == [
        ("thinking", "sig-1"),
        ("thinking", "sig-2"),
        ("thinking", "sig-3"),
    ]
    sent_back = agent_upstream.CALLS[2]["messages"][3]["content"][0]
    assert sent_back == {"type": "thinking", "thinking": "Step 2: what next?", "signature": "sig-2"}

    with deck(tmp_path, "none") as server, client_for(server) as client:
        assert hand_loop(client, stream=True, thinking=thinking) == recorded
        # A loop that drops the thinking block on its continuation gets the API's 400.
        dropped = recorded["messages"][:3]
        dropped[1] = {"role": "assistant", "content": dropped[1]["content"][1:]}
        with pytest.raises(anthropic.BadRequestError, match="Expected `thinking` or"):
            client.messages.create(
                model=MODEL, max_tokens=4096, messages=dropped, tools=TOOLS, thinking=thinking
            )


def test_a_paused_turn_is_continued_and_replayed(tmp_path: Path) -> None:
    tools = [*TOOLS, WEB_SEARCH]
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = hand_loop(client, tools=tools)
    assert stop_reasons(recorded) == ["pause_turn", "end_turn"]
    assert recorded["answers"][0]["content"][0]["type"] == "server_tool_use"
    assert conversation_lengths(tmp_path) == [1, 2]

    with deck(tmp_path, "none") as server, client_for(server) as client:
        assert hand_loop(client, tools=tools) == recorded


@pytest.mark.parametrize("threaded", [True, False], ids=["message-thread", "whole-history"])
def test_the_sdk_tool_runner_records_and_replays_a_loop(tmp_path: Path, threaded: bool) -> None:
    """The installed SDK's tool runner, over a message thread (its default: each turn sends
    only its new messages) and without one."""
    params = {} if threaded else {"thread": False}
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = sdk_runner(client, **params)
    assert [m["stop_reason"] for m in recorded] == ["tool_use", "tool_use", "end_turn"]
    assert recorded[-1]["content"][0]["text"].startswith(agent_upstream.FINAL)
    # Both parallel results went back in one message.
    results = agent_upstream.CALLS[1]["messages"][-1]["content"]
    assert [r["tool_use_id"] for r in results] == ["toolu_paris", "toolu_london"]
    threads = [call.get("thread") for call in agent_upstream.CALLS]
    if threaded:  # the runner's default: a thread made by the first turn, continued after
        assert threads == [
            {"type": "create"},
            {"type": "continue", "previous_message_id": recorded[0]["id"]},
            {"type": "continue", "previous_message_id": recorded[1]["id"]},
        ]
        assert conversation_lengths(tmp_path) == [1, 1, 1]
    else:
        assert threads == [None, None, None]
        assert conversation_lengths(tmp_path) == [1, 3, 5]

    with deck(tmp_path, "none") as server, client_for(server) as client:
        assert sdk_runner(client, **params) == recorded


def test_calls_sharing_a_user_message_never_collide(tmp_path: Path) -> None:
    variants: list[dict[str, Any]] = [
        {},
        {"system": "You are terse."},
        {"tools": TOOLS[:1]},
        {"model": "claude-haiku-4-5"},
    ]

    def first_texts(client: anthropic.Anthropic) -> list[str]:
        texts = []
        for params in variants:
            kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 1024, "tools": TOOLS}
            kwargs.update(params)
            message = client.messages.create(
                messages=[{"role": "user", "content": QUESTION}], **kwargs
            )
            texts.append(message.content[0].text)  # type: ignore[union-attr]
        return texts

    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = first_texts(client)
    assert len(set(recorded)) == 4
    assert "You are terse." in recorded[1]
    assert "claude-haiku-4-5" in recorded[3]
    assert len(interactions(tmp_path)) == 4

    with deck(tmp_path, "none") as server, client_for(server) as client:
        assert first_texts(client) == recorded


def test_volatile_tool_results_match_once_normalized(tmp_path: Path) -> None:
    rules = (Normalize.parse(TIME_RULE),)
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = hand_loop(client, run=lambda b: clock_tools(b["name"], b["input"]))

    # Without a normalizer the second step's tool results differ from the recording.
    with (
        deck(tmp_path, "none") as server,
        client_for(server) as client,
        pytest.raises(anthropic.NotFoundError, match=r"messages\[2\]\.content"),
    ):
        hand_loop(client, run=lambda b: clock_tools(b["name"], b["input"]))

    with deck(tmp_path, "none", normalize=rules) as server, client_for(server) as client:
        replayed = hand_loop(client, run=lambda b: clock_tools(b["name"], b["input"]))
        assert replayed["answers"] == recorded["answers"]
        # A result that differs beyond the normalized value still misses, and the message
        # shows the normalized values, not today's time.
        with pytest.raises(anthropic.NotFoundError) as missed:
            hand_loop(client, run=lambda b: clock_tools(b["name"], b["input"]).replace("18", "19"))
    message = str(missed.value)
    assert "<time>" in message
    assert str(datetime.now(UTC).year) + "-" not in message


def test_a_cassette_carries_its_own_normalizers(tmp_path: Path) -> None:
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = hand_loop(client, run=lambda b: clock_tools(b["name"], b["input"]))
    path = tmp_path / f"{CASSETTE}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["normalize"] = [TIME_RULE]
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")

    with deck(tmp_path, "none") as server, client_for(server) as client:
        replayed = hand_loop(client, run=lambda b: clock_tools(b["name"], b["input"]))
    assert replayed["answers"] == recorded["answers"]

    # Recording more into that cassette keeps its normalizers.
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        hand_loop(client, system="Be brief.")
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["normalize"] == [TIME_RULE]


@pytest.mark.parametrize(
    ("recorded_with", "replayed_with"),
    [({}, {"thread": False}), ({"thread": False}, {})],
    ids=["thread-to-whole-history", "whole-history-to-thread"],
)
def test_a_thread_is_how_a_loop_is_sent_not_what_it_asks(
    tmp_path: Path, recorded_with: dict[str, Any], replayed_with: dict[str, Any]
) -> None:
    """A loop recorded over a message thread replays to the same loop sent without one, and
    the other way round: tapedeck matches the conversation the thread holds."""
    with deck(tmp_path, "new_episodes") as server, client_for(server) as client:
        recorded = sdk_runner(client, **recorded_with)
    with deck(tmp_path, "none") as server, client_for(server) as client:
        assert sdk_runner(client, **replayed_with) == recorded
