"""A Message split into the event stream the API would have sent for it (``synthesize``),
so that a cassette holding only a JSON body can be replayed to a streaming client; the
inverse of :func:`tapedeck.cassette.message_stream.assemble`.

Pure functions over plain JSON values: no I/O, inputs are never mutated.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["STREAMED_INPUT_BLOCKS", "split_text", "synthesize"]

#: Block types whose ``input`` arrives as ``input_json_delta`` fragments.
STREAMED_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})

_WHITESPACE = re.compile(r"\s")


def synthesize(
    message: Mapping[str, Any], *, text_chunk: int = 12, json_chunk: int = 16
) -> list[tuple[str, dict[str, Any]]]:
    """Split a Message into the event stream the API would have sent for it.

    ``message_start`` carries the message with empty ``content``, null ``stop_reason`` and
    ``stop_sequence``, and ``output_tokens`` of at most 1. Each block gets
    ``content_block_start`` (with its streamed fields empty), its deltas and
    ``content_block_stop``: text in ``text_delta`` chunks of about ``text_chunk`` characters
    cut after whitespace where possible, with any citations first as ``citations_delta``;
    tool input as ``json.dumps`` cut into ``json_chunk``-character ``input_json_delta``
    fragments after an empty first one; thinking like text, then one ``signature_delta``.
    Other blocks (``web_search_tool_result``, ``redacted_thinking``, unknown types) come
    whole in their start event. Then ``message_delta`` with ``stop_reason``,
    ``stop_sequence`` (and ``stop_details`` if the message has it) and the final usage, and
    ``message_stop``.

    Round trip: ``assemble(synthesize(m)) == m`` for the messages the API returns, including
    text blocks with ``citations``: each citation goes in its own ``citations_delta`` before
    the block's text and is appended back in order. (The API sends each cited passage as its
    own text block, so the order of citations against the text within a block carries no
    meaning and nothing is lost by sending them first.) It does not hold for a message that
    lacks ``stop_reason`` or ``stop_sequence`` or ``usage`` (``message_delta`` always carries
    them, so they come back), nor for tool input that JSON does not represent exactly (a NaN
    float, a tuple that comes back as a list).

    >>> events = synthesize({"id": "m", "content": [{"type": "tool_use", "id": "t",
    ...     "name": "f", "input": {"a": 1}}], "stop_reason": "tool_use",
    ...     "stop_sequence": None, "usage": {"output_tokens": 9}}, json_chunk=4)
    >>> [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    ['', '{"a"', ': 1}']
    """
    if text_chunk < 1 or json_chunk < 1:
        raise ValueError(f"chunk sizes must be at least 1, got {text_chunk} and {json_chunk}")
    final = copy.deepcopy(dict(message))
    blocks: list[dict[str, Any]] = final.get("content") or []
    usage: dict[str, Any] = final.get("usage") or {}
    output_tokens = usage.get("output_tokens", 0)

    start = {**final, "content": [], "stop_reason": None, "stop_sequence": None}
    if "stop_details" in final:
        start["stop_details"] = None
    if usage:
        # Usage counts are cumulative; message_delta sends the final ones, so message_start
        # only needs what is known up front (the API reports a token or so of output here).
        start_usage = {k: v for k, v in usage.items() if k != "server_tool_use" or v is None}
        start_usage["output_tokens"] = min(1, output_tokens)
        start["usage"] = start_usage
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]

    for index, block in enumerate(blocks):
        first, deltas = _split_block(block, text_chunk, json_chunk)
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": first},
            )
        )
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))

    delta = {"stop_reason": final.get("stop_reason"), "stop_sequence": final.get("stop_sequence")}
    if "stop_details" in final:
        delta["stop_details"] = final["stop_details"]
    delta_usage = {k: v for k, v in usage.items() if v is not None}
    delta_usage["output_tokens"] = output_tokens
    events.append(
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage})
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _split_block(
    block: dict[str, Any], text_chunk: int, json_chunk: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The block as its start event carries it, and the deltas that complete it."""
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    if kind == "text":
        citations = block.get("citations")
        first = {**block, "text": ""}
        if isinstance(citations, list):
            first["citations"] = []
            deltas += ({"type": "citations_delta", "citation": c} for c in citations)
        deltas += (
            {"type": "text_delta", "text": t} for t in split_text(block.get("text", ""), text_chunk)
        )
    elif kind == "thinking":
        first = {**block, "thinking": "", "signature": ""}
        deltas += (
            {"type": "thinking_delta", "thinking": t}
            for t in split_text(block.get("thinking", ""), text_chunk)
        )
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    elif kind in STREAMED_INPUT_BLOCKS and "input" in block:
        first = {**block, "input": {}}
        text = json.dumps(block["input"], ensure_ascii=False)
        fragments = [""] + [text[i : i + json_chunk] for i in range(0, len(text), json_chunk)]
        deltas += ({"type": "input_json_delta", "partial_json": f} for f in fragments)
    else:
        first = block
    return first, deltas


def split_text(text: str, size: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``size`` characters, after whitespace if possible.

    A piece ends just after the last whitespace character within its ``size`` characters; a
    word longer than ``size`` is cut where the limit falls. The pieces join back to ``text``.

    >>> split_text("The quick brown fox jumps", 12)
    ['The quick ', 'brown fox ', 'jumps']
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    pieces: list[str] = []
    pos = 0
    while len(text) - pos > size:
        end = pos + size
        cut = end
        for match in _WHITESPACE.finditer(text, pos, end):
            cut = match.end()
        pieces.append(text[pos:cut])
        pos = cut
    if pos < len(text):
        pieces.append(text[pos:])
    return pieces
