"""An incremental Server-Sent Events decoder that follows the specification.

Bytes go in as they arrive, complete events come out. Lines may end with ``\\r\\n``,
``\\r`` or ``\\n`` (a ``\\r\\n`` split across two chunks counts once); lines starting
with ``:`` are comments; several ``data:`` lines join with ``\\n``; one space after the
colon is dropped. An event is dispatched at a blank line. See
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

Like the official SDKs' decoders, an event is dispatched when any field was set, so an
``event:`` line with no ``data:`` still counts.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")
#: A longer ``retry:`` value is ignored, as a non-number is.
_RETRY_DIGITS = 18


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One event as the stream sent it. ``event`` is ``"message"`` when no name was given."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes with :meth:`feed`; it returns the events those bytes completed."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._skip_lf = False
        self._first = True
        self._reset()

    def _reset(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._touched = False

    def feed(self, chunk: bytes) -> list[DecodedEvent]:
        """Decode ``chunk``; return the events completed by it, in order."""
        text = self._text.decode(chunk)
        if self._first and text:
            self._first = False
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text:
            self._skip_lf = False
            text = text.removeprefix("\n")
        buffer = self._buffer + text
        events: list[DecodedEvent] = []
        start = 0
        for match in _EOL.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                self._skip_lf = True  # a "\n" in the next chunk belongs to this "\r"
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str) -> DecodedEvent | None:
        if not line:
            if not self._touched:
                return None
            event = DecodedEvent(
                self._event or "message", "\n".join(self._data), self._id, self._retry
            )
            self._reset()
            return event
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry":
            # ASCII digits only (str.isdigit() also takes "²", which int() refuses), and
            # no more than int() reads without its digit limit: a bad upstream's bytes must
            # never break the parse.
            if value.isascii() and value.isdigit() and len(value) <= _RETRY_DIGITS:
                self._retry = int(value)
        else:
            return None
        self._touched = True
        return None

    @property
    def pending(self) -> bool:
        """True if bytes of an unfinished event are buffered (the stream ended mid-event)."""
        return bool(self._buffer) or self._touched


def json_or_text(text: str) -> object:
    """Event data (or a body) parsed as JSON, or the text itself if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text
