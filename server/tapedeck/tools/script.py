"""``tapedeck new NAME --script FILE``: a whole agent loop written from a short script.

The script is YAML: optional ``model``, ``system`` and ``tools`` (the definitions the
program sends), and ``turns`` — ``user`` text, ``assistant`` replies (``thinking``,
``text``, ``tool_calls``, ``stop_reason``) and ``tool_results`` (one per call of the reply
before, in order)::

    tools: [{name: get_weather, description: The weather., input_schema: {type: object}}]
    turns:
      - user: What is the weather in Paris?
      - assistant:
          text: Let me check.
          tool_calls: [{name: get_weather, input: {city: Paris}}]
      - tool_results: [18°C and sunny]
      - assistant: {text: It is 18°C and sunny in Paris.}

Every assistant turn is one interaction, answering the conversation before it: the request
matches on ``messages`` (and on ``system`` and ``tools`` when the script gives them), so the
loop replays to a program's own tool definitions, and to the SDK's tool runner with or
without a message thread. Ids and signatures depend only on the cassette name and the step.
Problems are reported as ``file:line: turns[2].tool_results: problem``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cassette.message_stream import assemble
from ..cassette.model import Interaction
from ..cassette.yaml_source import LineDict, load_yaml
from ..errors import UsageError, YAMLSourceError
from .authoring import (
    DEFAULT_MODEL,
    conversation_request,
    events_of,
    fake_id,
    fake_signature,
    streamed,
    tokens,
)

STOP_REASONS = ("end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal")
_TOP = {"model", "system", "tools", "turns"}
_ASSISTANT = {"thinking", "text", "tool_calls", "stop_reason"}
#: A thinking budget the API accepts, for scripts whose replies think.
THINKING = {"type": "enabled", "budget_tokens": 1024}


class _Script:
    """One script being read: where it is, for the errors."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: Any, field: str, problem: str, key: str | None = None) -> UsageError:
        """``file:line: field: problem``, the line of ``key`` in ``where`` (or of ``where``)."""
        line = 0
        if isinstance(where, LineDict):
            line = where.line_of(key) if key is not None else where.line
        at = f"{self.path}:{line}" if line else str(self.path)
        return UsageError(f"{at}: {field}: {problem}")

    def load(self) -> LineDict:
        try:
            doc = load_yaml(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"--script {self.path}: cannot read it: {exc.strerror}") from None
        except YAMLSourceError as exc:
            raise UsageError(f"{self.path}:{exc.line}: {exc.message}") from None
        if not isinstance(doc, LineDict):
            raise UsageError(f"{self.path}: expected a mapping with 'turns', got {doc!r}")
        unknown = sorted(set(doc) - _TOP)
        if unknown:
            expected = ", ".join(sorted(_TOP))
            raise self.error(doc, unknown[0], f"unknown key (expected {expected})", unknown[0])
        return doc


def _text(script: _Script, where: Any, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise script.error(where, field, f"expected text, got {value!r}")
    return value


def _calls(script: _Script, turn: LineDict, field: str) -> list[tuple[str, Any]]:
    calls = turn.get("tool_calls", [])
    if not isinstance(calls, list):
        raise script.error(turn, field, "expected a list of {name, input}")
    found = []
    for i, call in enumerate(calls):
        at = f"{field}[{i}]"
        if not isinstance(call, dict) or set(call) - {"name", "input"} or "name" not in call:
            raise script.error(turn, at, f"expected {{name: ..., input: {{...}}}}, got {call!r}")
        value = call.get("input", {})
        if not isinstance(value, dict):
            raise script.error(call, f"{at}.input", f"expected a mapping, got {value!r}")
        found.append((_text(script, call, f"{at}.name", call["name"]), value))
    return found


def _reply(script: _Script, turn: LineDict, field: str, seed: tuple[str, str]) -> dict[str, Any]:
    """The Message an assistant turn answers with."""
    unknown = sorted(set(turn) - _ASSISTANT)
    if unknown:
        raise script.error(turn, f"{field}.{unknown[0]}", "unknown key", unknown[0])
    content: list[dict[str, Any]] = []
    if "thinking" in turn:
        thought = _text(script, turn, f"{field}.thinking", turn["thinking"])
        content.append(
            {"type": "thinking", "thinking": thought, "signature": fake_signature(*seed, thought)}
        )
    if "text" in turn:
        content.append({"type": "text", "text": _text(script, turn, f"{field}.text", turn["text"])})
    for i, (name, value) in enumerate(_calls(script, turn, f"{field}.tool_calls")):
        tool_id = fake_id("toolu_", *seed, str(i), name)
        content.append({"type": "tool_use", "id": tool_id, "name": name, "input": value})
    if not content:
        raise script.error(turn, field, "give the reply: thinking, text or tool_calls")
    calls = any(b["type"] == "tool_use" for b in content)
    stop = turn.get("stop_reason", "tool_use" if calls else "end_turn")
    if stop not in STOP_REASONS:
        raise script.error(turn, f"{field}.stop_reason", f"expected one of {STOP_REASONS}")
    said = sum(tokens(json.dumps(b)) for b in content)
    return {
        "id": fake_id("msg_", *seed),
        "type": "message",
        "role": "assistant",
        "model": DEFAULT_MODEL,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": max(1, said)},
    }


def _results(script: _Script, turn: LineDict, field: str, asked: list[Any]) -> dict[str, Any]:
    """The user message answering the tool calls ``asked``."""
    given = turn["tool_results"]
    if not isinstance(given, list) or len(given) != len(asked):
        raise script.error(
            turn, field, f"expected a list of {len(asked)} results, one per tool call before it"
        )
    blocks = []
    for i, (call, result) in enumerate(zip(asked, given, strict=True)):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call["id"]}
        if isinstance(result, dict):
            if set(result) - {"content", "is_error"} or "content" not in result:
                raise script.error(result, f"{field}[{i}]", "expected {content, is_error}")
            block.update(result)
        else:
            block["content"] = _text(script, turn, f"{field}[{i}]", result)
        blocks.append(block)
    return {"role": "user", "content": blocks}


def build(name: str, path: Path, ttft_ms: float, tokens_per_second: float) -> list[Interaction]:
    """The interactions of the loop ``path`` describes, for cassette ``name``."""
    script = _Script(path)
    doc = script.load()
    model = _text(script, doc, "model", doc.get("model", DEFAULT_MODEL))
    system, definitions = doc.get("system"), doc.get("tools")
    if definitions is not None and not isinstance(definitions, list):
        raise script.error(doc, "tools", "expected a list of tool definitions")
    turns = doc.get("turns")
    if not isinstance(turns, list) or not turns:
        raise script.error(doc, "turns", "expected a list of user, assistant, tool_results turns")
    replies = [t["assistant"] for t in turns if isinstance(t, dict) and "assistant" in t]
    thinks = any(isinstance(r, dict) and "thinking" in r for r in replies)
    messages: list[Any] = []
    interactions: list[Interaction] = []
    pending: list[Any] = []  # the tool calls the last reply made
    for n, turn in enumerate(turns):
        field = f"turns[{n}]"
        if not isinstance(turn, LineDict) or len(turn) != 1:
            raise script.error(doc, field, "expected one of user:, assistant:, tool_results:")
        kind = next(iter(turn))
        if pending and kind != "tool_results":
            raise script.error(turn, field, "the reply before made tool calls: give tool_results")
        if kind == "user":
            messages.append(
                {"role": "user", "content": _text(script, turn, f"{field}.user", turn["user"])}
            )
        elif kind == "tool_results":
            if not pending:
                raise script.error(turn, field, "no tool calls before it to answer")
            messages.append(_results(script, turn, f"{field}.tool_results", pending))
            pending = []
        elif kind == "assistant":
            if not messages or messages[-1]["role"] != "user":
                raise script.error(turn, field, "an assistant turn answers a user turn")
            reply = turn["assistant"]
            if not isinstance(reply, LineDict):
                raise script.error(turn, field, "expected {thinking, text, tool_calls}")
            if thinks and reply.get("tool_calls") and "thinking" not in reply:
                raise script.error(
                    reply,
                    f"{field}.assistant",
                    "the loop thinks, so a reply with tool calls must start with thinking "
                    "(the API refuses the continuation otherwise): add thinking:",
                )
            message = _reply(script, reply, f"{field}.assistant", (name, str(n)))
            message["model"] = model
            pairs = events_of(message)
            request = conversation_request(model, list(messages), system, definitions)
            if any(b["type"] == "thinking" for b in message["content"]):
                request.body.update(max_tokens=2048, thinking=THINKING)
            response = streamed(pairs, f"{name}#{n}", ttft_ms, tokens_per_second)
            interactions.append(Interaction(request, response))
            # What the program sends back is what the stream assembles to.
            content = assemble(pairs)["content"]
            messages.append({"role": "assistant", "content": content})
            pending = [b for b in content if b["type"] == "tool_use"]
        else:
            raise script.error(turn, field, f"unknown turn {kind!r}")
    if not interactions or messages[-1]["role"] != "assistant":
        raise script.error(doc, "turns", "end with an assistant turn that answers the last one")
    return interactions


def describe(argv: Sequence[str], steps: int) -> str:
    """The cassette's description: which command wrote it."""
    return (
        f"Written by `tapedeck new {' '.join(argv)}`, not recorded from the API: a loop of "
        f"{steps} steps, each answering the whole conversation before it. Ids, signatures, "
        "usage and timing are made up. Each request matches on the conversation only (see "
        "'match'), whatever the model, max_tokens or sampling."
    )
