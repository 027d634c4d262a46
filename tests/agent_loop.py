"""An agent program for the agent-loop tests, and a tapedeck to run it through.

:func:`hand_loop` is a hand-written loop (parallel tool calls answered in one message, a
paused turn continued); :func:`sdk_runner` is the installed SDK's own tool runner. In the
recording modes :func:`deck`'s upstream is :mod:`agent_upstream`; in ``none`` there is none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic

import agent_upstream
from conftest import sdk
from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

MODEL = "claude-sonnet-4-5"
QUESTION = "What is the weather in Paris and London, and the time in Paris?"
CASSETTE = "agents/loop"
TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "description": "The local time in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
]
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
WEATHER = {"Paris": "18°C, sunny", "London": "12°C, raining"}
#: The documented normalizer for an ISO timestamp in a tool result.
TIME_RULE = {
    "path": "messages.*.content.*.content",
    "pattern": r"\d{4}-\d\d-\d\dT[^\"]*",
    "replace": "<time>",
}

Tool = Callable[[dict[str, Any]], str]


def fixed_tools(name: str, value: dict[str, Any]) -> str:
    if name == "get_weather":
        return WEATHER[value["city"]]
    return "14:05"


def clock_tools(name: str, value: dict[str, Any]) -> str:
    """Tools whose results carry the time they ran: different on every run."""
    return json.dumps({"result": fixed_tools(name, value), "at": datetime.now(UTC).isoformat()})


@contextmanager
def deck(root: Path, mode: str, **settings: Any) -> Iterator[ServerThread]:
    """tapedeck over ``root``; in the recording modes the stand-in agent is the upstream,
    in ``none`` there is no upstream at all (a closed port)."""
    recording = mode != "none"
    config = Settings(
        cassettes=root,
        port=0,
        mode=Mode(mode),
        timing=Timing.parse("instant"),
        upstream="https://api.anthropic.com" if recording else "http://127.0.0.1:9",
        **settings,
    )
    agent_upstream.CALLS.clear()
    transport = agent_upstream.transport() if recording else None
    with ServerThread(config, transport=transport) as server:
        yield server
    if not recording:
        assert agent_upstream.CALLS == [], "a replay reached the upstream"


def client_for(server: ServerThread, cassette: str = CASSETTE) -> anthropic.Anthropic:
    return sdk(server, default_headers={"x-tapedeck-test-cassette": cassette})


def blocks(message: Any) -> list[dict[str, Any]]:
    """A response's content as the program sends it back."""
    return [b.model_dump(mode="json", exclude_none=True) for b in message.content]


def hand_loop(
    client: anthropic.Anthropic,
    *,
    stream: bool = False,
    tools: list[dict[str, Any]] = TOOLS,
    run: Tool | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A hand-written agent loop: calls the model, runs the tools it asks for (all of a turn's
    results in one user message), continues a paused turn, until the final answer."""
    run_tool = run or (lambda block: fixed_tools(block["name"], block["input"]))
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    answers: list[dict[str, Any]] = []
    for _ in range(8):
        kwargs = {"model": MODEL, "max_tokens": 4096, "messages": messages, "tools": tools}
        kwargs.update(params)
        if stream:
            with client.messages.stream(**kwargs) as events:
                message = events.get_final_message()
        else:
            message = client.messages.create(**kwargs)
        answers.append(message.model_dump(mode="json"))
        messages.append({"role": "assistant", "content": blocks(message)})
        if message.stop_reason == "pause_turn":
            continue
        if message.stop_reason != "tool_use":
            break
        results = [
            {"type": "tool_result", "tool_use_id": b.id, "content": run_tool(b.model_dump())}
            for b in message.content
            if b.type == "tool_use"
        ]
        messages.append({"role": "user", "content": results})
    return {"answers": answers, "messages": messages}


def runner_tools() -> list[Any]:
    from anthropic.lib.tools import beta_tool

    @beta_tool
    def get_weather(city: str) -> str:
        """The current weather in a city.

        Args:
            city: The city.
        """
        return WEATHER[city]

    @beta_tool
    def get_time(city: str) -> str:
        """The local time in a city.

        Args:
            city: The city.
        """
        return "14:05"

    return [get_weather, get_time]


def sdk_runner(client: anthropic.Anthropic, **params: Any) -> list[dict[str, Any]]:
    """The messages of the installed SDK's own tool runner, run to the end.

    Every anthropic release this suite runs with has one (the ``dev`` group of
    pyproject.toml: 2.17.0 or later), sending its turns over a message thread unless given
    ``thread=False``: a release without it fails here, it is never skipped."""
    assert hasattr(client.beta.messages, "tool_runner"), (
        f"anthropic {anthropic.__version__} has no tool runner (client.beta.messages.tool_runner)"
    )
    runner = client.beta.messages.tool_runner(
        model=MODEL,
        max_tokens=1024,
        messages=[{"role": "user", "content": QUESTION}],
        tools=runner_tools(),
        **params,
    )
    return [message.model_dump(mode="json") for message in runner]
