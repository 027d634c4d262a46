"""``tapedeck new``: write a hand-made cassette from a few options.

The reply is built as a Message (optional thinking block, text, tool calls) and split into
events with :func:`tapedeck.cassette.message_stream.synthesize`, paced from a time to first event
and a token rate. The request carries ``match`` (``messages``, plus ``system`` and the tool
definitions of ``--tools FILE`` when given), so the cassette answers the conversation
whatever the model or sampling. ``--tool NAME=JSON`` describes a tool call in the *reply*;
it adds nothing to the request. ``--script FILE`` writes a whole loop (:mod:`.script`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cassette.files import SUFFIXES
from ..cassette.library import CassetteLibrary
from ..cassette.matching import MatchRules
from ..cassette.model import Interaction, RecordedRequest, RecordedResponse
from ..cassette.save import dump_cassette, write_atomic
from ..errors import ERROR_TYPES, UnsafeNameError, UsageError
from ..wire.errors import error_body
from . import script
from .authoring import (
    DEFAULT_MODEL,
    conversation_request,
    events_of,
    fake_id,
    fake_signature,
    streamed,
    tokens,
)
from .common import fail


@dataclass
class Options:
    """What ``tapedeck new`` was asked for."""

    name: str
    text: str | None = None
    thinking: str | None = None
    #: The reply's tool calls, as ``(name, input)``.
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The request's tool definitions (``--tools FILE``): matched on when given.
    definitions: list[Any] | None = None
    error: str | None = None
    status: int | None = None
    model: str = DEFAULT_MODEL
    prompt: str = "Hello"
    system: str | None = None
    ttft_ms: float = 300.0
    tokens_per_second: float = 60.0
    #: ``--script FILE``: the loop to write instead of one reply (:mod:`.script`).
    script: Path | None = None


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


def build_request(options: Options) -> RecordedRequest:
    """The request the cassette answers: the prompt, as :func:`conversation_request`."""
    messages = [{"role": "user", "content": options.prompt}]
    return conversation_request(options.model, messages, options.system, options.definitions)


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
    prompt += json.dumps(options.definitions) if options.definitions is not None else ""
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
    pairs = events_of(build_message(options))
    if options.error is not None:
        pairs = _cut_for_error(pairs, options.error)
    return streamed(pairs, options.name, options.ttft_ms, options.tokens_per_second)


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
    if options.script is not None:
        steps = script.build(
            options.name, options.script, options.ttft_ms, options.tokens_per_second
        )
        return dump_cassette(steps, script.describe(argv, len(steps)))
    if options.status is not None:
        response = build_error(options, options.status)
    else:
        response = build_stream(options)
    interaction = Interaction(build_request(options), response)
    return dump_cassette([interaction], describe(argv))


def check(options: Options) -> None:
    """Raise :class:`UsageError` for options that cannot make a cassette."""
    if options.text is None and not options.tools and options.status is None and not options.script:
        raise UsageError("give the reply: --text, --tool or --status (or a loop: --script)")
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
    try:
        text = render(options, argv)
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
    write_atomic(path, text)
    print(path)
    return 0
