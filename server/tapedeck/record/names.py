"""Cassette names for recordings: deterministic, so the same request maps to the same file.

E.g. ``messages/claude-sonnet-4-5-what-is-the-weather-1a2b3c4d``: the endpoint, the model,
the first words of the last user message and a hash of the whole request shape.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..cassette.matching import RequestShape

_WORD = re.compile(r"[a-z0-9]+")


def _slug(text: str, words: int = 6, limit: int = 48) -> str:
    return "-".join(_WORD.findall(text.lower())[:words])[:limit].strip("-")


def last_user_text(body: Any) -> str:
    """The text of the last user message of a Messages request body ("" if none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict)]
            return " ".join(t for t in texts if isinstance(t, str))
    return ""


def cassette_name(shape: RequestShape) -> str:
    """The deterministic cassette name for a request."""
    digest = hashlib.sha256(shape.key.encode()).hexdigest()[:8]
    folder = _slug(shape.path.removeprefix("/v1/").replace("/", " "), words=4) or "root"
    body = shape.body if isinstance(shape.body, dict) else {}
    model = body.get("model")
    parts = [_slug(model) if isinstance(model, str) else shape.method.lower()]
    parts.append(_slug(last_user_text(body)))
    return f"{folder}/{'-'.join(p for p in parts if p)}-{digest}"
