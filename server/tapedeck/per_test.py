"""State kept per test id, for the test ids used most recently.

Sequence positions and fault counters are kept per ``x-tapedeck-test-id``; a suite that
sends a new id for every test (the pytest plugin does) would grow the server without end.
:class:`PerTest` keeps the state of the ``limit`` test ids used most recently (the setting
``max_test_ids``), and remembers which ids it dropped so that one coming back can be told
why it starts afresh. Requests without a test id share the id ``""``, which is never dropped.

>>> positions = PerTest[dict[str, int]](limit=2)
>>> for test_id in ("a", "b", "c"):
...     positions.setdefault(test_id, dict)["seq"] = 1
>>> positions.get("a") is None, positions.forgotten("a")
(True, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Generic, TypeVar

V = TypeVar("V")
#: How many test ids keep their state unless told otherwise (the setting max_test_ids).
MAX_TEST_IDS = 1_000


class PerTest(Generic[V]):
    """Values by test id, for the ``limit`` ids used most recently (least recently used go
    first). Not thread-safe: use from one event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._values: dict[str, V] = {}
        #: Ids whose values were dropped to make room -> how much they held (len of the
        #: value, 1 if it has none); as many as ``limit``, the oldest going first.
        self._dropped: dict[str, int] = {}

    def get(self, test_id: str) -> V | None:
        """The value for ``test_id`` (now the most recently used), or ``None``."""
        values = self._values
        value = values.get(test_id)
        if value is not None and test_id:
            # Most recent last: re-inserting moves it there (dicts keep insertion order).
            del values[test_id]
            values[test_id] = value
        return value

    def setdefault(self, test_id: str, make: Callable[[], V]) -> V:
        """The value for ``test_id``, made with ``make()`` if there is none (dropping the
        least recently used id's beyond ``limit``)."""
        value = self.get(test_id)
        if value is None:
            value = self._values[test_id] = make()
            self._dropped.pop(test_id, None)
            self._make_room()
        return value

    def _make_room(self) -> None:
        values, dropped = self._values, self._dropped
        while len(values) > self.limit + ("" in values):
            oldest = next(k for k in values if k)
            value = values.pop(oldest)
            dropped[oldest] = len(value) if isinstance(value, Sized) else 1
            if len(dropped) > self.limit:
                del dropped[next(iter(dropped))]

    def pop(self, test_id: str) -> V | None:
        """Remove and return the value for ``test_id``; it no longer counts as dropped."""
        self._dropped.pop(test_id, None)
        return self._values.pop(test_id, None)

    def clear(self) -> None:
        self._values.clear()
        self._dropped.clear()

    def forgotten(self, test_id: str) -> int:
        """How much ``test_id`` held when it was dropped to make room (0 if it was not);
        asked once: it is then no longer counted as dropped."""
        return self._dropped.pop(test_id, 0) if self._dropped else 0

    def values(self) -> Iterator[V]:
        """The values, least recently used first (a copy: safe to change while iterating)."""
        return iter(list(self._values.values()))

    def items(self) -> list[tuple[str, V]]:
        """``(test id, value)`` pairs, least recently used first (a copy)."""
        return list(self._values.items())

    @property
    def empty(self) -> bool:
        """Nothing kept, and nothing dropped to tell of."""
        return not self._values and not self._dropped

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, test_id: object) -> bool:
        return test_id in self._values
