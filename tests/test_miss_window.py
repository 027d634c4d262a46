"""A miss finds the difference inside long values: the first differing character and a
window around it on both sides, in the 404, the journal and its typed entries; the log names
the field and the offset, never the values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import LogLines, MakeServer, sdk
from tapedeck.cassette.differences import WINDOW_AFTER, WINDOW_BEFORE, compare
from tapedeck.cassette.matching import MatchRules
from tapedeck.observe.entries import JournalEntry, Window

RULES = MatchRules()
#: A system prompt of about 6 KB that says, in its middle, where it runs.
HEAD = "You are an interactive agent that helps users with software engineering tasks.\n" * 40
TAIL = "\nIMPORTANT: never guess a URL. Answer in the user's language.\n" * 35


def prompt(directory: str) -> str:
    return f"{HEAD}Primary working directory: {directory}\nIs a git repository: true{TAIL}"


def first(got: Any, want: Any) -> Any:
    return next(compare(RULES.shape("POST", "/v1/messages", [], [], got), shape(want)))


def shape(body: Any) -> Any:
    return RULES.shape("POST", "/v1/messages", [], [], body)


def test_two_long_texts_are_shown_around_their_first_difference() -> None:
    alpha, beta = prompt("/srv/alpha"), prompt("/srv/beta")
    at = len(HEAD) + len("Primary working directory: /srv/")
    difference = first({"system": [{"text": alpha}]}, {"system": [{"text": beta}]})

    window = difference.window()
    assert window is not None
    assert (window.at, window.before) == (at, alpha[at - WINDOW_BEFORE : at])
    assert window.incoming == alpha[at : at + WINDOW_AFTER]
    assert window.recorded == beta[at : at + WINDOW_AFTER]
    assert difference.shown() == (
        f"system[0].text at char {at:,}: "
        '"…imary working directory: /srv/alpha\\nIs a git repository: true\\nIMPORTAN…"'
        " != "
        '"…imary working directory: /srv/beta\\nIs a git repository: true\\nIMPORTANT…"'
    )
    # The log: the field and the offset, each value's size and hash, no text of either.
    logged = difference.logged()
    assert logged.startswith(f"system[0].text at char {at:,}: text of {len(alpha)} chars #")
    assert "alpha" not in logged
    assert "srv" not in logged
    assert "agent" not in logged


@pytest.mark.parametrize(
    ("got", "want", "shown"),
    [
        # Short values are shown whole.
        ("hi", "hello", 'x: "hi" != "hello"'),
        # A long text differing at its start: nothing before, an ellipsis after.
        ("a" + "x" * 70, "b" + "x" * 70, f'x at char 0: "a{"x" * 39}…" != "b{"x" * 39}…"'),
        # Differing near the end: the ends are shown, no ellipsis after them.
        ("x" * 70 + "a", "x" * 70 + "b", f'x at char 70: "…{"x" * 30}a" != "…{"x" * 30}b"'),
        # One is the other and more: the shorter side shows its end.
        ("x" * 70, "x" * 70 + "tail", f'x at char 70: "…{"x" * 30}" != "…{"x" * 30}tail"'),
        # A long text against a short one.
        ("y" * 80, "short", f'x at char 0: "{"y" * 40}…" != "short"'),
        # Line breaks and quotes are escaped as JSON, so the window stays on one line.
        (
            'say "x"\n' * 10,
            'say "x"\n' * 9 + 'say "y"\n',
            'x at char 77: "…\\nsay \\"x\\"\\nsay \\"x\\"\\nsay \\"x\\"\\nsay \\"x\\"\\n"'
            ' != "…\\nsay \\"x\\"\\nsay \\"x\\"\\nsay \\"x\\"\\nsay \\"y\\"\\n"',
        ),
    ],
    ids=["short", "at-start", "at-end", "prefix", "long-short", "escaped"],
)
def test_windows(got: str, want: str, shown: str) -> None:
    assert first({"x": got}, {"x": want}).shown() == shown


def test_lists_and_mappings_name_their_first_differing_item_or_key() -> None:
    tools = [{"name": f"tool_{i}", "description": f"does thing {i}"} for i in range(24)]
    changed = [dict(t) for t in tools]
    changed[17]["description"] = "does another thing"
    streaming = [{**t, "eager_input_streaming": True} for t in tools]
    turns = [{"role": "user", "content": f"turn {i}"} for i in range(12)]

    assert first({"tools": changed}, {"tools": tools}).shown() == (
        'tools[17].description: "does another thing" != "does thing 17"'
    )
    assert first({"tools": streaming}, {"tools": tools}).shown() == (
        "tools[0].eager_input_streaming: true != (absent)"
    )
    assert first({"messages": turns}, {"messages": turns[:-1]}).shown() == (
        'messages[11]: {"role": "user", "content": "turn 11"} != (absent)'
    )
    # A value that is not text is cut short, never windowed.
    long_list = [{"role": "user", "content": "x" * 80}]
    assert first({"messages": long_list}, {"messages": "x"}).shown() == (
        'messages: [{"role": "user", "content": "' + "x" * 27 + '... != "x"'
    )


def test_the_size_of_a_difference() -> None:
    assert first({"x": "Hello there"}, {"x": "Hello"}).size() == 6
    assert (
        first({"x": "Hello there, unrecorded"}, {"x": "Write a haiku about autumn."}).size() == 27
    )
    assert first({"x": "abXcd"}, {"x": "abYYcd"}).size() == 2
    assert first({"n": 255}, {"n": 256}).size() == 1
    assert first({"x": [1, 2]}, {}).size() == len("[1, 2]")


def deck(root: Path, system: str) -> Path:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "billing"}, {"type": "text", "text": system}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    interaction = {
        "request": {"method": "POST", "path": "/v1/messages", "body": body},
        "response": {
            "status": 200,
            "body": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "hello"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        },
    }
    (root / "agent.yaml").write_text(json.dumps({"version": 1, "interactions": [interaction]}))
    return root


def test_through_the_server(
    make_server: MakeServer, tmp_path: Path, tapedeck_log: LogLines
) -> None:
    alpha, beta = prompt("/srv/alpha"), prompt("/srv/beta")
    at = len(HEAD) + len("Primary working directory: /srv/")
    test_id = "tests/test_miss_window.py::through the server"
    with make_server(deck(tmp_path, beta), journal_body_limit=1000) as server:
        tapedeck_log.only(server)
        with (
            sdk(server, default_headers={"x-tapedeck-test-id": test_id}) as client,
            pytest.raises(anthropic.NotFoundError) as caught,
        ):
            client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                system=[{"type": "text", "text": "billing"}, {"type": "text", "text": alpha}],
                messages=[{"role": "user", "content": "hi"}],
            )
        journal = httpx.get(
            f"{server.base_url}/_tapedeck/journal", params={"test_id": test_id}, timeout=10
        ).json()["entries"]
        (line,) = tapedeck_log.wait_for(r"POST /v1/messages 404")

    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert f"system[1].text at char {at:,}: " in message
    assert (
        '"…imary working directory: /srv/alpha\\nIs a git repository: true\\nIMPORTAN…"' in message
    )
    assert (
        '"…imary working directory: /srv/beta\\nIs a git repository: true\\nIMPORTANT…"' in message
    )

    (entry,) = journal
    assert "body" not in entry["request"]  # too large to keep, the miss still explained
    (difference,) = entry["miss"]["differences"]
    assert difference["field"] == "system[1].text"
    assert difference["incoming"] == f"({len(json.dumps(alpha))} chars of JSON)"
    assert difference["window"] == {
        "at": at,
        "before": alpha[at - WINDOW_BEFORE : at],
        "incoming": alpha[at : at + WINDOW_AFTER],
        "recorded": beta[at : at + WINDOW_AFTER],
    }
    assert difference["shown"] in message
    typed = JournalEntry.from_json(entry)
    assert typed.miss is not None
    assert typed.miss.differences[0].window == Window(
        at, alpha[at - WINDOW_BEFORE : at], alpha[at : at + 40], beta[at : at + 40]
    )
    assert f"system[1].text at char {at:,}: " in typed.line()

    # The log line names the field and the offset, and quotes nothing of either prompt.
    assert f"system[1].text at char {at:,}: text of {len(alpha)} chars #" in line
    assert "srv" not in line
    assert "alpha" not in line
    assert "interactive" not in line


def test_a_window_never_cuts_a_secret_in_the_journal(
    make_server: MakeServer, tmp_path: Path
) -> None:
    # The recorded text holds what redact_patterns names, where the window would cut it
    # (a hand-written cassette: a recording would have redacted it).
    recorded = "x" * 100 + "R" + "y" * 32 + "acct-123456" + "z" * 50
    asked = "x" * 100 + "Q" + "y" * 32 + "z" * 50
    test_id = "tests/test_miss_window.py::secret"
    with (
        make_server(deck(tmp_path, recorded), redact_patterns=("acct-[0-9]{6}",)) as server,
        sdk(server, default_headers={"x-tapedeck-test-id": test_id}) as client,
    ):
        with pytest.raises(anthropic.NotFoundError) as caught:
            client.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=64,
                system=[{"type": "text", "text": "billing"}, {"type": "text", "text": asked}],
                messages=[{"role": "user", "content": "hi"}],
            )
        (entry,) = httpx.get(
            f"{server.base_url}/_tapedeck/journal", params={"test_id": test_id}, timeout=10
        ).json()["entries"]
    (difference,) = entry["miss"]["differences"]
    assert difference["window"]["at"] == 100
    assert difference["window"]["recorded"] == "R" + "y" * 32 + "[REDACT"
    # Neither the journal nor the 404 holds a piece of it.
    assert "acct-1" not in json.dumps(entry)
    assert '"…xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxR' + "y" * 32 + '[REDACT…"' in caught.value.message
    assert "acct-1" not in caught.value.message
