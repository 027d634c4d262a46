"""Server-Sent Events framing, exactly as the Messages API sends it.

Every event carries an ``event:`` line (both SDKs route by name and drop unnamed events)
and ends with a blank line, including the last one (both decoders drop a final event that
is not terminated). Lines end with ``\\n``; data that spans lines becomes several ``data:``
lines, per the SSE specification.
"""

from __future__ import annotations

import json
from typing import Any

from sse_starlette import ServerSentEvent


def encode_data(data: Any) -> str:
    """The ``data:`` text of an event: compact JSON, or the string itself if it is raw text."""
    if isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def encode_event(event: str, data: Any) -> bytes:
    """Render one event to its exact wire bytes.

    >>> encode_event("ping", {"type": "ping"})
    b'event: ping\\ndata: {"type":"ping"}\\n\\n'
    """
    return ServerSentEvent(data=encode_data(data), event=event, sep="\n").encode()


#: The ``ping`` event the API sends, as bytes.
PING = encode_event("ping", {"type": "ping"})
