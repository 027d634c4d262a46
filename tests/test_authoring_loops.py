"""``tapedeck new --script``: a tool loop written without an API key, replayed through the
SDK's tool runner (over a message thread and without) and a hand-written loop; the script's
mistakes reported as file:line: field: problem; ``--tools`` matched on and ``--tool`` not;
``tapedeck show`` printing a loop as a conversation."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest
import yaml

from agent_loop import QUESTION, TOOLS, client_for, deck, hand_loop, sdk_runner
from conftest import sdk
from test_tools_cli import run

SCRIPT = """\
turns:
  - user: What is the weather in Paris and London, and the time in Paris?
  - assistant:
      text: Let me check both cities.
      tool_calls:
        - {name: get_weather, input: {city: Paris}}
        - {name: get_weather, input: {city: London}}
  - tool_results: ["18°C, sunny", "12°C, raining"]
  - assistant:
      tool_calls: [{name: get_time, input: {city: Paris}}]
  - tool_results: ["14:05"]
  - assistant:
      text: Paris is 18°C and sunny, London 12°C and raining; it is 14:05 in Paris.
"""
FINAL = "Paris is 18°C and sunny, London 12°C and raining; it is 14:05 in Paris."


def script(tmp_path: Path, text: str = SCRIPT, name: str = "loop.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def written(tmp_path: Path, *args: str | Path) -> Path:
    cassettes = tmp_path / "cassettes"
    result = run("new", "agents/weather", "--cassettes", cassettes, *args)
    assert result.returncode == 0, result.stderr
    return cassettes


def test_a_scripted_loop_lints_and_is_deterministic(tmp_path: Path) -> None:
    cassettes = written(tmp_path, "--script", script(tmp_path))
    path = cassettes / "agents/weather.yaml"
    lint = run("lint", path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    steps = doc["interactions"]
    assert [len(s["request"]["body"]["messages"]) for s in steps] == [1, 3, 5]
    assert all(s["request"]["match"] == ["messages"] for s in steps)
    assert "tools" not in steps[0]["request"]["body"]
    assert "Written by `tapedeck new agents/weather --script" in doc["description"]
    again = written(tmp_path / "again", "--script", script(tmp_path))
    assert (again / "agents/weather.yaml").read_text() == path.read_text()


@pytest.mark.parametrize("threaded", [True, False], ids=["message-thread", "whole-history"])
def test_a_scripted_loop_replays_through_the_sdk_tool_runner(
    tmp_path: Path, threaded: bool
) -> None:
    cassettes = written(tmp_path, "--script", script(tmp_path))
    with deck(cassettes, "none") as server, client_for(server, "agents/weather") as client:
        answers = sdk_runner(client, **({} if threaded else {"thread": False}))
    assert [a["stop_reason"] for a in answers] == ["tool_use", "tool_use", "end_turn"]
    assert answers[-1]["content"][0]["text"] == FINAL


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_scripted_loop_replays_to_a_hand_written_loop(tmp_path: Path, stream: bool) -> None:
    """The program defines its own tools and model: the script matches on messages only."""
    cassettes = written(tmp_path, "--script", script(tmp_path))
    with deck(cassettes, "none") as server, client_for(server, "agents/weather") as client:
        transcript = hand_loop(client, stream=stream)
    assert [a["stop_reason"] for a in transcript["answers"]] == ["tool_use"] * 2 + ["end_turn"]
    assert transcript["answers"][-1]["content"][0]["text"] == FINAL


def test_thinking_in_a_script_carries_a_signature_validation_accepts(tmp_path: Path) -> None:
    thinking = SCRIPT.replace(
        "      text: Let me check both cities.",
        "      thinking: Two cities, then the time.\n      text: Let me check both cities.",
    ).replace(
        "      tool_calls: [{name: get_time",
        "      thinking: Now the time.\n      tool_calls: [{name: get_time",
    )
    cassettes = written(tmp_path, "--script", script(tmp_path, thinking))
    with deck(cassettes, "none") as server, client_for(server, "agents/weather") as client:
        transcript = hand_loop(client, thinking={"type": "enabled", "budget_tokens": 1024})
        first = transcript["answers"][0]["content"][0]
        assert first["type"] == "thinking"
        assert first["signature"].startswith("Eq")
        assert transcript["answers"][-1]["content"][0]["text"] == FINAL
        # Dropping the thinking block on the continuation is refused, as the API does.
        dropped = transcript["messages"][:3]
        dropped[1] = {"role": "assistant", "content": dropped[1]["content"][1:]}
        with pytest.raises(anthropic.BadRequestError, match="Expected `thinking`"):
            client.messages.create(
                model="m",
                max_tokens=4096,
                messages=dropped,
                thinking={"type": "enabled", "budget_tokens": 1024},
            )


BAD_SCRIPTS = [
    ("turns: []\n", ":1: turns: expected a list"),
    ("turns:\n  - assistant: {text: hi}\n", ":2: turns[0]: an assistant turn answers a user turn"),
    ("turns:\n  - user: hi\n", "turns: end with an assistant turn"),
    (
        "turns:\n  - user: hi\n  - assistant:\n      tool_calls: [{name: f}]\n  - user: and?\n",
        ":5: turns[2]: the reply before made tool calls: give tool_results",
    ),
    (
        "turns:\n  - user: hi\n  - assistant:\n      tool_calls: [{name: f}, {name: g}]\n"
        "  - tool_results: [one]\n  - assistant: {text: ok}\n",
        ":5: turns[2].tool_results: expected a list of 2 results",
    ),
    ("turns:\n  - user: hi\n  - tool_results: [x]\n", ":3: turns[1]: no tool calls before it"),
    ("turns:\n  - user: hi\n  - assistant: {txt: hi}\n", ":3: turns[1].assistant.txt: unknown"),
    (
        "turns:\n  - user: hi\n  - assistant: {text: hi, stop_reason: done}\n",
        "turns[1].assistant.stop_reason: expected one of",
    ),
    ("model: m\nturn: []\n", ":2: turn: unknown key"),
    ("turns:\n  - user: hi\n  - say: hi\n", "turns[1]: unknown turn 'say'"),
    ("turns: [\n", ":2:"),
    (
        "turns:\n  - user: hi\n  - assistant:\n      thinking: hm\n      tool_calls: [{name: f}]\n"
        "  - tool_results: [x]\n  - assistant:\n      tool_calls: [{name: g}]\n",
        ":8: turns[3].assistant: the loop thinks, so a reply with tool calls must start with",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD_SCRIPTS)
def test_a_bad_script_says_where_and_what(tmp_path: Path, text: str, problem: str) -> None:
    path = script(tmp_path, text)
    result = run("new", "x/y", "--cassettes", tmp_path / "out", "--script", path)
    assert result.returncode == 2
    assert f"tapedeck: error: {path}" in result.stderr
    assert problem in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_script_leaves_out_the_reply_options(tmp_path: Path) -> None:
    result = run("new", "x", "--cassettes", tmp_path, "--script", script(tmp_path), "--text", "t")
    assert result.returncode == 2
    assert "--script writes the whole loop; leave out --text" in result.stderr


def test_tools_file_is_matched_on_and_tool_is_not(tmp_path: Path) -> None:
    definitions = tmp_path / "tools.json"
    definitions.write_text(json.dumps(TOOLS), encoding="utf-8")
    cassettes = written(tmp_path, "--script", script(tmp_path))
    only = run("new", "chat/only", "--cassettes", cassettes, "--text", "Which city?")
    assert only.returncode == 0
    strict = run(
        "new", "chat/strict", "--cassettes", cassettes, "--text", "Defined.", "--prompt", "Hi",
        "--tools", definitions,
    )  # fmt: skip
    assert strict.returncode == 0, strict.stderr
    body = yaml.safe_load((cassettes / "chat/strict.yaml").read_text())["interactions"][0]
    assert body["request"]["match"] == ["messages", "tools"]
    with deck(cassettes, "none") as server, sdk(server) as client:
        asked = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}]}
        assert client.messages.create(**asked, tools=TOOLS).content[0].text == "Defined."  # type: ignore[union-attr]
        with pytest.raises(anthropic.NotFoundError, match="tools"):
            client.messages.create(**asked, tools=TOOLS[:1])
        hello = {**asked, "messages": [{"role": "user", "content": "Hello"}]}
        assert client.messages.create(**hello, tools=TOOLS[:1]).content[0].text == "Which city?"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{", "tools.json:2: invalid YAML"), ('{"name": "f"}', "expected a list of tool definitions")],
)
def test_a_bad_tools_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "tools.json"
    path.write_text(content, encoding="utf-8")
    result = run("new", "x", "--cassettes", tmp_path, "--text", "t", "--tools", path)
    assert result.returncode == 2
    assert problem in result.stderr


def show(cassettes: Path, *args: str) -> str:
    result = run("show", "agents/weather", "--cassettes", cassettes, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_show_prints_a_loop_as_a_conversation(tmp_path: Path) -> None:
    cassettes = written(tmp_path, "--script", script(tmp_path))
    out = show(cassettes)
    assert "conversation 1: 3 step(s)" in out
    lines = [line.strip() for line in out.splitlines()]
    at = lines.index(f"user       {QUESTION}")
    assert lines[at + 1].startswith("step 1  interaction 0, stop tool_use, ")
    assert lines[at + 2 : at + 7] == [
        "assistant  Let me check both cities.",
        'tool call  get_weather {"city": "Paris"}',
        'tool call  get_weather {"city": "London"}',
        "result     get_weather -> 18°C, sunny",
        "result     get_weather -> 12°C, raining",
    ]
    assert lines[at + 7].startswith("step 2  interaction 1, stop tool_use")
    assert lines[at + 9] == "result     get_time -> 14:05"
    assert lines[at + 10].startswith("step 3  interaction 2, stop end_turn")
    assert "interaction 0 (line" in show(cassettes, "--interactions")


def test_show_follows_a_recorded_message_thread(tmp_path: Path) -> None:
    with deck(tmp_path, "new_episodes") as server, client_for(server, "agents/weather") as client:
        sdk_runner(client)
    out = show(tmp_path)
    assert "conversation 1: 3 step(s)" in out
    assert "result     get_time -> 14:05" in out


def test_show_keeps_single_replies_per_interaction(tmp_path: Path) -> None:
    result = run("show", "streaming/tool-use")
    assert result.returncode == 0
    assert "interaction 0 (line" in result.stdout
    assert "conversation" not in result.stdout


def test_show_of_the_shipped_loop() -> None:
    result = run("show", "agents/weather-loop")
    assert result.returncode == 0, result.stderr
    assert "conversation 1: 2 step(s)" in result.stdout
    assert "result     get_weather -> 65°F, sunny" in result.stdout


def test_the_command_line_help_names_script_and_tools() -> None:
    text = run("new", "--help").stdout
    assert "--script FILE" in text
    assert "--tools FILE" in text
