"""``tapedeck new``: write a hand-made cassette from a few options.

The reply is built as a Message (optional thinking block, text, tool calls) and split into
events with :func:`tapedeck.source.message_stream.synthesize`, paced from a time to first event
and a token rate. The request carries ``match`` (``messages``, plus ``system``/``tools``
when given), so the cassette answers the conversation whatever the model or sampling.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cassette.library import SUFFIXES, CassetteLibrary
from ..cassette.matching import MatchRules
from ..cassette.model import Interaction, RecordedEvent, RecordedRequest, RecordedResponse
from ..cassette.save import dump_cassette, write_atomic
from ..errors import UnsafeNameError, UsageError
from ..source.message_stream import synthesize
from ..wire.errors import ERROR_TYPES, error_body
from .common import fail

DEFAULT_MODEL = "claude-sonnet-4-5"


@dataclass
class Options:
    """What ``tapedeck new`` was asked for."""

    name: str
    text: str | None = None
    thinking: str | None = None
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    status: int | None = None
    model: str = DEFAULT_MODEL
    prompt: str = "Hello"
    system: str | None = None
    ttft_ms: float = 300.0
    tokens_per_second: float = 60.0


def parse_tool(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME='{"json": "input"}'`` as ``(name, input)``; the input must be a JSON object."""
    name, sep, raw = spec.partition("=")
    if not sep or not name.strip():
        raise UsageError(f'--tool {spec!r}: expected NAME=\'{{"key": "value"}}\'')
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--tool {name}: input is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"--tool {name}: input must be a JSON object, got {raw!r}")
    return name.strip(), value


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode()).digest()


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def fake_id(prefix: str, *seed: str, length: int = 24) -> str:
    """A random-looking id (``msg_01...``, ``toolu_01...``) that depends only on ``seed``."""
    number = int.from_bytes(_digest(prefix, *seed), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return f"{prefix}01{''.join(chars)}"


def fake_signature(*seed: str) -> str:
    """A plausible thinking-block signature (base64, as the API sends) from ``seed``."""
    raw = b"".join(_digest(str(i), *seed) for i in range(6))
    return "Eq" + base64.b64encode(raw).decode()


def tokens(text: str) -> int:
    """A rough token count: about four characters a token, at least one for any text."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "null"


def tool_definition(name: str, example: dict[str, Any]) -> dict[str, Any]:
    """A minimal tool definition whose schema declares the keys of ``example``."""
    return {
        "name": name,
        "description": f"The {name} tool.",
        "input_schema": {
            "type": "object",
            "properties": {k: {"type": _json_type(v)} for k, v in example.items()},
            "required": list(example),
        },
    }


def build_request(options: Options) -> RecordedRequest:
    """The streaming request, matching on the conversation only."""
    body: dict[str, Any] = {"model": options.model, "max_tokens": 1024}
    match = ["messages"]
    if options.system is not None:
        body["system"] = options.system
        match.append("system")
    if options.tools:
        body["tools"] = [tool_definition(n, example) for n, example in options.tools]
        match.append("tools")
    body["messages"] = [{"role": "user", "content": options.prompt}]
    body["stream"] = True
    return RecordedRequest(method="POST", path="/v1/messages", body=body, match=tuple(match))


def build_message(options: Options) -> dict[str, Any]:
    """The Message the cassette's stream assembles to."""
    content: list[dict[str, Any]] = []
    output = 0
    if options.thinking is not None:
        signature = fake_signature(options.name, options.thinking)
        content.append({"type": "thinking", "thinking": options.thinking, "signature": signature})
        output += tokens(options.thinking)
    if options.text is not None:
        content.append({"type": "text", "text": options.text})
        output += tokens(options.text)
    for i, (tool, value) in enumerate(options.tools):
        tool_id = fake_id("toolu_", options.name, str(i), tool)
        content.append({"type": "tool_use", "id": tool_id, "name": tool, "input": value})
        output += tokens(json.dumps(value)) + 10
    prompt = options.prompt + (options.system or "")
    prompt += "".join(json.dumps(tool_definition(n, e)) for n, e in options.tools)
    return {
        "id": fake_id("msg_", options.name),
        "type": "message",
        "role": "assistant",
        "model": options.model,
        "content": content,
        "stop_reason": "tool_use" if options.tools else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 8 + tokens(prompt), "output_tokens": max(1, output)},
    }


def _delta_tokens(delta: dict[str, Any]) -> int:
    for key in ("text", "thinking", "partial_json"):
        if isinstance(delta.get(key), str):
            return tokens(delta[key])
    return 0


def pace(
    pairs: Sequence[tuple[str, dict[str, Any]]], tokens_per_second: float
) -> list[tuple[str, dict[str, Any], float]]:
    """Times for the events: the first at 0, then each delta after its tokens' worth of time.

    Start, stop and message events follow the event before them by a millisecond.
    """
    timed: list[tuple[str, dict[str, Any], float]] = []
    at = 0.0
    for i, (name, data) in enumerate(pairs):
        if i:
            delta = data.get("delta") if name == "content_block_delta" else None
            if isinstance(delta, dict):
                at += max(1.0, 1000.0 * _delta_tokens(delta) / tokens_per_second)
            else:
                at += 1.0
        timed.append((name, data, round(at, 1)))
    return timed


def _with_ping(pairs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """A ``ping`` after the first block's start, where the API sends one."""
    for i, (name, _) in enumerate(pairs):
        if name == "content_block_start":
            return [*pairs[: i + 1], ("ping", {"type": "ping"}), *pairs[i + 1 :]]
    return pairs


def _cut_for_error(
    pairs: list[tuple[str, dict[str, Any]]], error_type: str
) -> list[tuple[str, dict[str, Any]]]:
    """The stream broken off after about half of its text, ending in an ``error`` event."""
    text_at = [
        i
        for i, (name, data) in enumerate(pairs)
        if name == "content_block_delta" and data["delta"].get("type") == "text_delta"
    ]
    if text_at:
        keep = text_at[(len(text_at) - 1) // 2] + 1
    else:
        keep = next((i + 1 for i, (n, _) in enumerate(pairs) if n == "content_block_start"), 1)
    return [*pairs[:keep], ("error", error_body(error_type))]


def build_stream(options: Options) -> RecordedResponse:
    """A 200 event stream answering with the message (or breaking off with an error)."""
    pairs = _with_ping(synthesize(build_message(options)))
    if options.error is not None:
        pairs = _cut_for_error(pairs, options.error)
    events = tuple(
        RecordedEvent(name, data, at) for name, data, at in pace(pairs, options.tokens_per_second)
    )
    headers = (
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("request-id", fake_id("req_", options.name)),
    )
    return RecordedResponse(
        status=200, headers=headers, time_to_headers_ms=options.ttft_ms, events=events
    )


def build_error(options: Options, status: int) -> RecordedResponse:
    """A JSON error response in the API's shape, with retry headers where the API sends them."""
    error_type = options.error or ERROR_TYPES.get(status, "api_error")
    request_id = fake_id("req_", options.name)
    headers: list[tuple[str, str]] = [
        ("content-type", "application/json"),
        ("request-id", request_id),
    ]
    retry = status in (408, 409, 429) or status >= 500
    headers.append(("x-should-retry", "true" if retry else "false"))
    if status == 429:
        headers.append(("retry-after", "1"))
    body = error_body(error_type, request_id=request_id)
    return RecordedResponse(
        status=status,
        headers=tuple(headers),
        time_to_headers_ms=options.ttft_ms,
        body=body,
    )


def describe(argv: Sequence[str]) -> str:
    """The cassette's description: written by ``tapedeck new`` with these arguments."""
    return (
        f"Written by `tapedeck new {shlex.join(argv)}`, not recorded from the API: the reply, "
        "ids, signature, usage and timing are made up. The request matches on the conversation "
        "only (see 'match'), whatever the model, max_tokens or sampling."
    )


def render(options: Options, argv: Sequence[str]) -> str:
    """The cassette's YAML text."""
    if options.status is not None:
        response = build_error(options, options.status)
    else:
        response = build_stream(options)
    interaction = Interaction(build_request(options), response)
    return dump_cassette([interaction], describe(argv))


def check(options: Options) -> None:
    """Raise :class:`UsageError` for options that cannot make a cassette."""
    if options.text is None and not options.tools and options.status is None:
        raise UsageError("give the reply: --text, --tool or --status")
    if options.status is not None and not 400 <= options.status <= 599:
        raise UsageError(f"--status {options.status}: expected an error status, 400 to 599")
    if options.ttft_ms < 0:
        raise UsageError("--ttft-ms must be >= 0")
    if options.tokens_per_second <= 0:
        raise UsageError("--tokens-per-second must be > 0")


def new(options: Options, root: Path, force: bool, argv: Sequence[str]) -> int:
    """Write ``root/NAME.yaml`` and print its path; 2 for bad options, 1 if it exists."""
    try:
        name = CassetteLibrary(root, [], MatchRules()).safe_name(options.name)
    except UnsafeNameError as exc:
        return fail(f"bad cassette name {options.name!r}: {exc}")
    options.name = name
    try:
        check(options)
    except UsageError as exc:
        return fail(str(exc))
    path = root / f"{name}.yaml"
    for suffix in SUFFIXES:
        existing = root / f"{name}{suffix}"
        if existing.exists():
            if not force:
                return fail(f"{existing} exists; use --force to overwrite it", 1)
            path = existing  # overwrite it, rather than add a second file of the same name
            break
    write_atomic(path, render(options, argv))
    print(path)
    return 0
