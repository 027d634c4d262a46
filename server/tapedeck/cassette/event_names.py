"""The event names of a Message stream: the known ones and the shape of their data, which
delta fills which block, and the unknown names that are a typo of a known one (checked in
:mod:`.event_order`)."""

from __future__ import annotations

import functools
from typing import Any

#: Event names with a documented data shape: data must be a mapping with this ``type``.
KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)

#: Which block types each delta type may fill in.
DELTA_BLOCKS: dict[str, frozenset[str]] = {
    "text_delta": frozenset({"text"}),
    "citations_delta": frozenset({"text"}),
    "input_json_delta": frozenset({"tool_use", "server_tool_use", "mcp_tool_use"}),
    "thinking_delta": frozenset({"thinking"}),
    "signature_delta": frozenset({"thinking"}),
}


def data_problem(name: str, data: Any) -> str | None:
    """What is wrong with the data of a known event, or ``None``."""
    if name not in KNOWN_EVENTS:
        return None
    if not isinstance(data, dict):
        return f"data of a {name} event must be a mapping, got {type(data).__name__}"
    if data.get("type") != name:
        return f"data.type is {data.get('type')!r}, expected {name!r} for a {name} event"
    return None


@functools.lru_cache(maxsize=256)
def misspelt(name: str) -> str | None:
    """The known event name ``name`` is a typo of (one edit away, two for long names, or
    the same but for case and ``-``), or ``None``: other unknown names may be new events."""
    if name in KNOWN_EVENTS:
        return None
    plain = name.strip().lower().replace("-", "_")
    for known in sorted(KNOWN_EVENTS):
        if plain == known or _distance(name, known) <= (1 if len(known) < 10 else 2):
            return known
    return None


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from ``a`` to ``b``."""
    if abs(len(a) - len(b)) > 2:
        return 3
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        row = [i]
        for j, y in enumerate(b, 1):
            cost = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, before[j - 2] + 1)
            row.append(cost)
        before, previous = previous, row
    return previous[-1]
