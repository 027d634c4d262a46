"""Sequence positions: which of several matching interactions the next request gets.

Positions are kept per test id (the ``x-tapedeck-test-id`` header, ``""`` when absent),
per cassette and per request, so parallel tests never move each other's positions.
"""

from __future__ import annotations

import enum


class SequenceEnd(enum.StrEnum):
    """What a request gets once a sequence has been served to its end."""

    #: Serve the last interaction again, as often as asked.
    REPEAT = "repeat"
    #: Answer an error saying the sequence is used up.
    ERROR = "error"


class Sequences:
    """Positions in interaction sequences. Not thread-safe: use from one event loop."""

    def __init__(self, end: SequenceEnd = SequenceEnd.REPEAT) -> None:
        self.end = end
        self._next: dict[tuple[str, str, str], int] = {}

    def peek(self, test_id: str, cassette: str, request_key: str, length: int) -> int | None:
        """The index to serve now, or ``None`` when the sequence is used up (``ERROR``).

        Does not move on: call :meth:`advance` once the interaction is served.
        """
        position = self._next.get((test_id, cassette, request_key), 0)
        if position < length:
            return position
        return length - 1 if self.end is SequenceEnd.REPEAT else None

    def advance(self, test_id: str, cassette: str, request_key: str) -> None:
        """Move past the interaction just served."""
        slot = (test_id, cassette, request_key)
        self._next[slot] = self._next.get(slot, 0) + 1

    def reset(self, test_id: str | None = None) -> int:
        """Rewind every sequence, or only one test id's; return how many were rewound."""
        if test_id is None:
            count = len(self._next)
            self._next.clear()
            return count
        slots = [slot for slot in self._next if slot[0] == test_id]
        for slot in slots:
            del self._next[slot]
        return len(slots)
