"""Sequence positions: which of several matching interactions the next request gets.

Positions are kept per test id (the ``x-tapedeck-test-id`` header, ``""`` when absent),
per cassette and per request, so parallel tests never move each other's positions. Only
the ``max_test_ids`` test ids used most recently keep theirs (:mod:`tapedeck.per_test`);
one that comes back after its positions were dropped starts again from the first
interaction, and the log says so.
"""

from __future__ import annotations

import enum
import logging

from ..per_test import MAX_TEST_IDS, PerTest

log = logging.getLogger("tapedeck")


class SequenceEnd(enum.StrEnum):
    """What a request gets once a sequence has been served to its end."""

    #: Serve the last interaction again, as often as asked.
    REPEAT = "repeat"
    #: Answer an error saying the sequence is used up.
    ERROR = "error"


class Sequences:
    """Positions in interaction sequences. Not thread-safe: use from one event loop."""

    def __init__(self, end: SequenceEnd = SequenceEnd.REPEAT, limit: int = MAX_TEST_IDS) -> None:
        self.end = end
        #: Per test id: (cassette, request key) -> the next position.
        self._next: PerTest[dict[tuple[str, str], int]] = PerTest(limit)

    def peek(self, test_id: str, cassette: str, request_key: str, length: int) -> int | None:
        """The index to serve now, or ``None`` when the sequence is used up (``ERROR``).

        Does not move on: call :meth:`advance` once the interaction is served.
        """
        if length == 1 and self.end is SequenceEnd.REPEAT:
            return 0  # one interaction, served again and again: no position to look up
        positions = self._next.get(test_id)
        if positions is None:
            position = 0
            forgotten = self._next.forgotten(test_id)
            if forgotten:
                log.warning(
                    "tapedeck: test id %r was idle while %d newer test ids were used: its %d "
                    "sequence position(s) were forgotten and its sequences start again from "
                    "the first interaction (setting max_test_ids)",
                    test_id,
                    self._next.limit,
                    forgotten,
                )
        else:
            position = positions.get((cassette, request_key), 0)
        if position < length:
            return position
        return length - 1 if self.end is SequenceEnd.REPEAT else None

    def advance(self, test_id: str, cassette: str, request_key: str, length: int) -> None:
        """Move past the interaction just served, one of ``length``: a single interaction
        that repeats has no position to keep (nor any per-request cost)."""
        if length == 1 and self.end is SequenceEnd.REPEAT:
            return
        positions = self._next.setdefault(test_id, dict)
        slot = (cassette, request_key)
        positions[slot] = positions.get(slot, 0) + 1

    def reset(self, test_id: str | None = None) -> int:
        """Rewind every sequence, or only one test id's; return how many were rewound."""
        if test_id is None:
            count = sum(len(p) for p in self._next.values())
            self._next.clear()
            return count
        return len(self._next.pop(test_id) or ())

    def __len__(self) -> int:
        """How many test ids have positions kept."""
        return len(self._next)
