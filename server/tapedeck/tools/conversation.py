"""``tapedeck show`` for agent cassettes: the interactions read as conversations, turn by turn.

A step continues the conversation before it when its request's messages (rebuilt, for a
message thread, from the reply it continues) start with that conversation's messages;
otherwise it starts a new one. Each step shows what the program sent since the step before
(user text, tool results named after their calls), then the reply: thinking, text, tool
calls with their inputs, the stop reason and the time the step took.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..cassette.model import Cassette, Interaction
from ..cassette.summary import total_ms
from ..cassette.threads import Thread, ended, rebuilt, reply_id, reply_of

_TOOL_CALLS = ("tool_use", "server_tool_use", "mcp_tool_use")


@dataclass
class Conversation:
    """Steps that continue each other: ``(interaction index, rebuilt request)``."""

    steps: list[tuple[int, Any]] = field(default_factory=list)


def _messages(body: Any) -> list[Any]:
    messages = body.get("messages") if isinstance(body, Mapping) else None
    return messages if isinstance(messages, list) else []


def conversations(cassette: Cassette) -> list[Conversation]:
    """The cassette's ``/v1/messages`` interactions grouped into conversations, in order."""
    said: dict[str, Thread] = {}
    found: list[Conversation] = []
    for i, interaction in enumerate(cassette.interactions):
        if interaction.request.path.split("?")[0] != "/v1/messages":
            continue
        asked = rebuilt(interaction.request.body, said.get)
        rid = reply_id(interaction)
        thread = ended(asked, interaction) if rid is not None else None
        if rid is not None and thread is not None:
            said[rid] = thread
        messages = _messages(asked)
        for conversation in reversed(found):
            before = _messages(conversation.steps[-1][1])
            if len(messages) > len(before) and messages[: len(before)] == before:
                conversation.steps.append((i, asked))
                break
        else:
            found.append(Conversation([(i, asked)]))
    return found


def is_agent(cassette: Cassette) -> bool:
    """Whether some conversation of the cassette takes more than one step."""
    return any(len(c.steps) > 1 for c in conversations(cassette))


def _short(text: str, limit: int = 160) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(
            str(b.get("text", f"[{b.get('type')}]")) for b in content if isinstance(b, Mapping)
        )
    return str(content)


def _sent(message: Any, names: Mapping[str, str]) -> list[str]:
    """The lines for a message the program sent."""
    if not isinstance(message, Mapping):
        return []
    role, content = message.get("role"), message.get("content")
    if isinstance(content, str):
        return [f"  {role:<10} {_short(content)}"]
    lines = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "tool_result":
            name = names.get(str(block.get("tool_use_id")), "?")
            error = " (error)" if block.get("is_error") else ""
            text = _result_text(block.get("content"))
            lines.append(f"  {'result':<10} {name}{error} -> {_short(text)}")
        elif kind == "text":
            lines.append(f"  {role:<10} {_short(str(block.get('text', '')))}")
        else:
            lines.append(f"  {role:<10} [{kind}]")
    return lines


def _reply(message: Mapping[str, Any], names: dict[str, str]) -> list[str]:
    lines = []
    for block in message.get("content") or []:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "thinking":
            lines.append(f"  {'thinking':<10} {_short(str(block.get('thinking', '')))}")
        elif kind == "redacted_thinking":
            lines.append(f"  {'thinking':<10} (redacted)")
        elif kind == "text":
            lines.append(f"  {'assistant':<10} {_short(str(block.get('text', '')))}")
        elif kind in _TOOL_CALLS:
            names[str(block.get("id"))] = str(block.get("name"))
            value = json.dumps(block.get("input"), ensure_ascii=False)
            server = " (server)" if kind != "tool_use" else ""
            lines.append(f"  {'tool call':<10} {block.get('name')}{server} {_short(value, 120)}")
        else:
            lines.append(f"  {'assistant':<10} [{kind}]")
    return lines


def _step(number: int, index: int, interaction: Interaction, names: dict[str, str]) -> list[str]:
    response = interaction.response
    took = f"{total_ms(response):.0f} ms"
    message = reply_of(interaction)
    if message is None:
        return [f"step {number}  interaction {index}: {response.status}, no message  {took}"]
    stop = message.get("stop_reason")
    return [f"step {number}  interaction {index}, stop {stop}, {took}", *_reply(message, names)]


def describe(cassette: Cassette) -> list[str]:
    """The conversation lines for a cassette."""
    lines: list[str] = []
    interactions = cassette.interactions
    for n, conversation in enumerate(conversations(cassette), 1):
        steps = conversation.steps
        total = sum(total_ms(interactions[i].response) for i, _ in steps)
        lines.append("")
        lines.append(f"conversation {n}: {len(steps)} step(s), {total:.0f} ms")
        names: dict[str, str] = {}
        system = steps[0][1].get("system") if isinstance(steps[0][1], Mapping) else None
        if system:
            text = system if isinstance(system, str) else _result_text(system)
            lines.append(f"  {'system':<10} {_short(text)}")
        before = 0
        for number, (index, asked) in enumerate(steps, 1):
            messages = _messages(asked)
            # After the first step, the first new message is the reply before, shown there.
            for message in messages[before + (1 if number > 1 else 0) :]:
                lines.extend(_sent(message, names))
            before = len(messages)
            lines.extend(_step(number, index, interactions[index], names))
    return lines
