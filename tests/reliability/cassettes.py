"""Cassettes the scenarios serve, and the exact bytes tapedeck must send for them (built
here from the events, not by tapedeck)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL = "claude-sonnet-4-5"


def ask(content: str, stream: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
    }
    if stream:
        body["stream"] = True
    return body


def message_events(texts: list[str], gap_ms: float) -> list[dict[str, Any]]:
    """A text message streamed as ``texts`` deltas, ``gap_ms`` apart."""
    events: list[dict[str, Any]] = [
        {
            "event": "message_start",
            "data": {
                "type": "message_start",
                "message": {
                    "id": "msg_rel",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": MODEL,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
        },
        {
            "event": "content_block_start",
            "data": {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        },
    ]
    events += [
        {
            "event": "content_block_delta",
            "data": {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        }
        for text in texts
    ]
    events += [
        {"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 0}},
        {
            "event": "message_delta",
            "data": {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(texts) + 1},
            },
        },
        {"event": "message_stop", "data": {"type": "message_stop"}},
    ]
    for i, event in enumerate(events):
        event["at_ms"] = round(i * gap_ms, 3)
    return events


def write(root: Path, name: str, interactions: list[dict[str, Any]]) -> Path:
    """Write cassette ``name`` (JSON is YAML) under ``root``."""
    path = root / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "interactions": interactions}))
    return path


def streamed(content: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "request": {"method": "POST", "path": "/v1/messages", "body": ask(content)},
        "response": {"status": 200, "headers": {"request-id": "req_rel"}, "events": events},
    }


def wire_bytes(events: list[dict[str, Any]]) -> bytes:
    """The SSE body tapedeck must send for ``events``: ``event:``, compact JSON ``data:``,
    a blank line after each."""
    return b"".join(
        f"event: {e['event']}\ndata: "
        f"{json.dumps(e['data'], ensure_ascii=False, separators=(',', ':'))}\n\n".encode()
        for e in events
    )


def event_ends(events: list[dict[str, Any]]) -> list[int]:
    """The body offset at which each event's bytes end."""
    ends, total = [], 0
    for event in events:
        total += len(wire_bytes([event]))
        ends.append(total)
    return ends
