"""A recorded interaction at a glance: what its body is, how it ended, how long it took,
the model and the last user message. ``tapedeck ls``/``show`` and the web view's catalogue
both describe interactions with these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Interaction, RecordedResponse, StreamEnd


def kind(response: RecordedResponse) -> str:
    """``stream``, ``json``, ``text``, ``binary`` or ``empty``: what the response body is."""
    if response.events is not None:
        return "stream"
    if response.text is not None:
        return "text"
    if response.binary is not None:
        return "binary"
    return "json" if response.body is not None else "empty"


def _error_type(data: Any) -> str:
    error = data.get("error") if isinstance(data, Mapping) else None
    found = error.get("type") if isinstance(error, Mapping) else None
    return str(found) if found else "?"


def ending(response: RecordedResponse) -> str:
    """How the response ended: ``complete``, ``disconnect``, ``error:TYPE`` or ``incomplete``.

    A stream is ``complete`` when it ends with ``message_stop``, ``error:TYPE`` when its last
    event is an ``error`` event, ``disconnect`` when the connection is cut (``end:
    disconnect``), and ``incomplete`` when it just stops. A body is ``error:TYPE`` when it has
    the API's error shape, else ``complete``.
    """
    events = response.events
    if events is None:
        body = response.body
        if isinstance(body, Mapping) and body.get("type") == "error":
            return f"error:{_error_type(body)}"
        return "complete"
    # From the end: a lazily loaded stream knows its last event without reading its file.
    last = next((e for e in reversed(events) if e.event != "ping"), None)
    if last is not None and last.event == "error":
        return f"error:{_error_type(last.data)}"
    if response.end is StreamEnd.DISCONNECT:
        return "disconnect"
    return "complete" if last is not None and last.event == "message_stop" else "incomplete"


def first_event_ms(response: RecordedResponse) -> float | None:
    """Milliseconds from the request to the first event, or ``None`` without events."""
    if not response.events:
        return None
    return response.time_to_headers_ms + response.events[0].at_ms


def total_ms(response: RecordedResponse) -> float:
    """Milliseconds from the request to the end of the response."""
    end = response.end_at_ms
    if end is None:
        end = response.events[-1].at_ms if response.events else 0.0
    return response.time_to_headers_ms + end


def model_of(interaction: Interaction) -> str:
    """The model the request asked for, else the one the response names, else ``-``."""
    body = interaction.request.body
    if isinstance(body, Mapping) and isinstance(body.get("model"), str):
        return str(body["model"])
    response = interaction.response
    if isinstance(response.body, Mapping) and isinstance(response.body.get("model"), str):
        return str(response.body["model"])
    for event in response.events or ():
        if event.event == "message_start" and isinstance(event.data, Mapping):
            message = event.data.get("message")
            if isinstance(message, Mapping) and isinstance(message.get("model"), str):
                return str(message["model"])
    return "-"


def content_text(content: Any) -> str:
    """A message's content as text, other blocks as ``[type]``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, Mapping):
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                else:
                    parts.append(f"[{block.get('type')}]")
        return " ".join(parts)
    return repr(content)


def last_user_message(body: Any) -> str | None:
    """The text of the last user message of a Messages request body, if any."""
    messages = body.get("messages") if isinstance(body, Mapping) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return content_text(message.get("content"))
    return None
