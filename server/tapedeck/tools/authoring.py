"""Building blocks of hand-made cassettes (``tapedeck new``): ids and signatures that depend
only on what they are for, rough token counts, and a streamed reply paced like the API's.

Everything is deterministic: the same input always gives the same file.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence
from typing import Any

from ..cassette.message_stream import synthesize
from ..cassette.model import RecordedEvent, RecordedRequest, RecordedResponse

Pairs = list[tuple[str, dict[str, Any]]]
DEFAULT_MODEL = "claude-sonnet-4-5"


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


def with_ping(pairs: Pairs) -> Pairs:
    """A ``ping`` after the first block's start, where the API sends one."""
    for i, (name, _) in enumerate(pairs):
        if name == "content_block_start":
            return [*pairs[: i + 1], ("ping", {"type": "ping"}), *pairs[i + 1 :]]
    return pairs


def streamed(pairs: Pairs, seed: str, ttft_ms: float, tokens_per_second: float) -> RecordedResponse:
    """A 200 event stream of ``pairs``, paced from ``ttft_ms`` and ``tokens_per_second``;
    its request id comes from ``seed``."""
    events = tuple(
        RecordedEvent(name, data, at) for name, data, at in pace(pairs, tokens_per_second)
    )
    headers = (
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache"),
        ("request-id", fake_id("req_", seed)),
    )
    return RecordedResponse(status=200, headers=headers, time_to_headers_ms=ttft_ms, events=events)


def events_of(message: dict[str, Any]) -> Pairs:
    """The events the API streams for ``message``, with the ``ping`` it sends after the
    first block's start."""
    return with_ping(synthesize(message))


def conversation_request(
    model: str, messages: list[Any], system: Any, definitions: Any
) -> RecordedRequest:
    """A streaming request that matches on ``messages`` only, and on ``system`` and the tool
    ``definitions`` when they are given: a program that defines its own tools (or none)
    still hits it, whatever its model, max_tokens or sampling."""
    body: dict[str, Any] = {"model": model, "max_tokens": 1024}
    match = ["messages"]
    if system is not None:
        body["system"] = system
        match.append("system")
    if definitions is not None:
        body["tools"] = definitions
        match.append("tools")
    body["messages"] = messages
    body["stream"] = True
    return RecordedRequest(method="POST", path="/v1/messages", body=body, match=tuple(match))
