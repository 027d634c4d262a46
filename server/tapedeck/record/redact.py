"""Keeping secrets off disk: headers that carry them are dropped, keys in bodies replaced.

Applied to everything a recording writes: request and response headers, request and
response bodies, and every event's data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: Headers never written to a cassette, whatever the configuration adds.
SECRET_HEADERS = frozenset(
    {
        "x-api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "anthropic-organization-id",
    }
)

#: Anything shaped like an Anthropic API key.
KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{4,}")
PLACEHOLDER = "sk-ant-REDACTED"


def redact_headers(
    pairs: Iterable[tuple[str, str]], extra: frozenset[str] = frozenset()
) -> tuple[tuple[str, str], ...]:
    """``pairs`` without secret headers, and with key-shaped strings in values replaced."""
    return tuple(
        (name, redact_text(value))
        for name, value in pairs
        if name.lower() not in SECRET_HEADERS and name.lower() not in extra
    )


def redact_text(text: str) -> str:
    """``text`` with every key-shaped string replaced by a placeholder."""
    return KEY_PATTERN.sub(PLACEHOLDER, text) if "sk-ant-" in text else text


def redact_value(value: Any) -> Any:
    """A JSON value with every key-shaped string in it (keys and values) replaced."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value
