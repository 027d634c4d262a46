"""The minimal cassettes of the test_cassette_load*.py files, and helpers to edit and write them."""

from __future__ import annotations

from pathlib import Path

#: The file name the texts are parsed under: errors about them must name it.
FILE = "tapes/sample.yaml"

# A minimal streamed cassette; the line numbers below are the ones errors must name.
STREAM = """\
version: 1
description: a minimal stream
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: claude-sonnet-4-5
        max_tokens: 16
        messages: [{role: user, content: Hi}]
    response:
      status: 200
      headers:
        Request-Id: req_1
      time_to_headers_ms: 40
      events:
        - event: message_start
          at_ms: 0
          data: {type: message_start}
        - event: message_stop
          at_ms: 12.5
          data: {type: message_stop}
"""
#   line  4: "  - request:"          (interactions[0])
#   line  5: "      method: POST"
#   line  6: "      path: /v1/messages"
#   line 11: "    response:"
#   line 12: "      status: 200"
#   line 16: "      events:"
#   line 17: "        - event: message_start" (events[0])
#   line 18: "          at_ms: 0"
#   line 20: "        - event: message_stop"  (events[1])
#   line 21: "          at_ms: 12.5"

# A minimal JSON-body cassette.
JSON = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
    response:
      status: 529
      body: {type: error}
"""
#   line 3: "  - request:", line 6: "    response:", line 7: "      status: 529"


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the single occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
