"""What became of each answer offered for recording: written into its cassette, or not and
why — for the pytest plugin's report lines and its end-of-run list of cassettes written.

The recorder adds one :class:`Outcome` per answer it was handed, under the test id the
request carried (``x-tapedeck-test-id``; ``""`` without one). Kept in memory, a bounded
number of test ids (the oldest go first) and :data:`PER_TEST_ID` outcomes per test id on
average (the oldest test ids' go first; one test id alone keeps its newest), so a long run
does not grow it without end.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

#: How many test ids' outcomes are kept by default (the server passes its ``max_test_ids``).
KEPT_TEST_IDS = 10_000
#: Outcomes kept in all: this many times the test ids kept (a few hundred bytes each). The
#: cassettes offered answers but never written are kept as many.
PER_TEST_ID = 10


@dataclass(frozen=True, slots=True)
class Outcome:
    """One answer offered for recording into cassette ``cassette`` (a name)."""

    cassette: str
    status: int
    #: Whether the cassette file was written with it.
    written: bool
    #: Why nothing was written (``""`` when it was).
    why: str = ""
    #: The file did not exist before this write.
    new: bool = False
    #: How many interactions the cassette holds after this write.
    interactions: int = 0

    @property
    def text(self) -> str:
        """``recorded into NAME (2 interactions)`` or ``not recorded into NAME: why``."""
        if not self.written:
            return f"not recorded into {self.cassette}: {self.why}"
        count = self.interactions
        return f"recorded into {self.cassette} ({count} interaction{'' if count == 1 else 's'})"


class Outcomes:
    """The outcomes of a run, by test id, and the cassettes written (thread-safe)."""

    def __init__(self, kept: int = KEPT_TEST_IDS) -> None:
        self.kept = kept
        #: Outcomes kept in all, and how many there are.
        self.most = PER_TEST_ID * kept
        self._count = 0
        self._by_test: OrderedDict[str, list[Outcome]] = OrderedDict()
        #: Cassette name -> its last outcome that wrote it; and whether the run created it.
        self._written: dict[str, tuple[Outcome, bool]] = {}
        #: Cassette name -> its last outcome, for those never written in the run.
        self._not_written: dict[str, Outcome] = {}
        self._lock = threading.Lock()

    def add(self, test_id: str, outcome: Outcome) -> None:
        with self._lock:
            found = self._by_test.pop(test_id, [])
            found.append(outcome)
            self._by_test[test_id] = found
            self._count += 1
            while len(self._by_test) > self.kept or (
                self._count > self.most and len(self._by_test) > 1
            ):
                self._count -= len(self._by_test.popitem(last=False)[1])
            if self._count > self.most:  # one test id alone: its oldest go
                del found[: self._count - self.most]
                self._count = self.most
            name = outcome.cassette
            if outcome.written:
                created = outcome.new or (name in self._written and self._written[name][1])
                self._written[name] = (outcome, created)
                self._not_written.pop(name, None)
            elif name not in self._written:
                self._not_written.pop(name, None)  # the newest last
                self._not_written[name] = outcome
                if len(self._not_written) > self.most:
                    del self._not_written[next(iter(self._not_written))]

    def of(self, test_id: str) -> list[Outcome]:
        """The outcomes of the requests with ``test_id``, oldest first."""
        with self._lock:
            return list(self._by_test.get(test_id, ()))

    def forget(self, test_id: str) -> None:
        """Drop ``test_id``'s outcomes (a test that runs again starts with none)."""
        with self._lock:
            self._count -= len(self._by_test.pop(test_id, ()))

    def written(self) -> list[tuple[Outcome, bool]]:
        """For each cassette written in the run (by name), its last write, and whether the
        run created it."""
        with self._lock:
            return [self._written[name] for name in sorted(self._written)]

    def not_written(self) -> list[Outcome]:
        """For each cassette the run offered answers to but never wrote, the last outcome."""
        with self._lock:
            return [self._not_written[name] for name in sorted(self._not_written)]
