"""Which faults apply to a request, and whether each fires this time.

Faults come from three places: the server-wide list (``--fault`` / config, replaceable
through the admin API), per-test lists set through the admin API with an
``x-tapedeck-test-id`` header, and a request's own ``x-tapedeck-fault`` header (which
replaces the others for that request). ``times`` counters and seeded random streams are
kept per test id, so one test's requests never change what fires for another; so are the
buckets of ``quota`` faults (:mod:`tapedeck.shaping.quota`), which run on the clocks of
:mod:`tapedeck.shaping.clock`. Only the
``max_test_ids`` test ids used most recently keep their lists and counters
(:mod:`tapedeck.per_test`); one that comes back after they were dropped gets the
server-wide faults with fresh counters, and the log says so.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..per_test import MAX_TEST_IDS, PerTest
from .clock import Clocks
from .faults import Fault, FaultKind
from .quota import Quotas

log = logging.getLogger("tapedeck")
#: Fault lists whose result is kept (requests may each send a new ``x-tapedeck-fault``).
_ALWAYS_KEPT = 256
#: ``times`` counters and seeded draws kept per test id (its requests may each send a new
#: ``x-tapedeck-fault``): past them the oldest is forgotten and starts afresh if used again.
COUNTERS_KEPT = 256


@dataclass(slots=True)
class _TestFaults:
    """One test id's fault list (``None``: the server-wide one) and the state that gates it."""

    faults: tuple[Fault, ...] | None = None
    counts: dict[Fault, int] = field(default_factory=dict)
    #: Made when a seeded fault first draws (most test ids never need one).
    seeded: dict[Fault, random.Random] | None = None

    def __len__(self) -> int:
        return (self.faults is not None) + len(self.counts)


class FaultBook:
    """The fault lists and the state that gates them. Use from one event loop."""

    def __init__(self, defaults: Sequence[Fault] = (), limit: int = MAX_TEST_IDS) -> None:
        self.defaults = tuple(defaults)
        self.server_wide = self.defaults
        self._tests: PerTest[_TestFaults] = PerTest(limit)
        self._unseeded = random.Random()
        #: What fires from lists with no ``times`` or ``p``: the same every time, so
        #: worked out once (and the same tuple handed out, which later caches key on).
        self._always: dict[tuple[tuple[Fault, ...], bool], tuple[Fault, ...]] = {}
        #: The buckets of quota faults, and the clocks they run on.
        self.quotas = Quotas(limit)
        self.clocks = Clocks(limit)

    def active(self, test_id: str) -> tuple[Fault, ...]:
        """The faults for a request with this test id (``""`` for none)."""
        if self._tests.empty:
            return self.server_wide
        state = self._tests.get(test_id)
        if state is None:
            if test_id and self._tests.forgotten(test_id):
                log.warning(
                    "tapedeck: test id %r was idle while %d newer test ids were used: the "
                    "faults set for it and its fault counters were forgotten; it gets the "
                    "server-wide faults, counted afresh (setting max_test_ids)",
                    test_id,
                    self._tests.limit,
                )
            return self.server_wide
        return self.server_wide if state.faults is None else state.faults

    def put(self, faults: Sequence[Fault], test_id: str | None) -> None:
        """Set the faults for one test id, or server-wide; their counters start afresh."""
        if test_id:
            self._tests.setdefault(test_id, _TestFaults).faults = tuple(faults)
        else:
            self.server_wide = tuple(faults)
        self.rewind(test_id or None)

    def clear(self, test_id: str | None) -> None:
        """Drop one test id's faults, or restore the server-wide faults it started with."""
        if test_id:
            self._tests.pop(test_id)
        else:
            self.server_wide = self.defaults
        self.rewind(test_id or None)

    def rewind(self, test_id: str | None) -> None:
        """Restart ``times`` counters and seeded decisions and refill quotas (one test
        id's, or all)."""
        found = self._tests.items() if test_id is None else [(test_id, self._tests.get(test_id))]
        for key, state in found:
            if state is None:
                continue
            if state.faults is None:
                self._tests.pop(key)  # counters were all it held
            else:
                state.counts.clear()
                state.seeded = None
        self.quotas.rewind(test_id)

    def count(self, test_id: str, fault: Fault) -> int:
        """How many requests of ``test_id`` have counted against ``fault``'s ``times``."""
        state = self._tests.get(test_id)
        return 0 if state is None else state.counts.get(fault, 0)

    def fire(self, faults: Sequence[Fault], test_id: str, streaming: bool) -> tuple[Fault, ...]:
        """The faults that fire on this request; counts it against their ``times``.

        A fault that only shapes event streams cannot apply to a non-streaming response,
        so such a request neither fires it nor counts against its ``times``. Quotas are not
        fired here: they act when a request goes over them (:meth:`passes`).
        """
        listed = (tuple(faults), streaming)
        found = self._always.get(listed)
        if found is not None:
            return found
        fired: list[Fault] = []
        for fault in faults:
            if (fault.streams_only and not streaming) or fault.kind is FaultKind.QUOTA:
                continue
            if self.passes(test_id, fault):
                fired.append(fault)
        result = tuple(fired)
        if all(f.times is None and f.p >= 1 for f in faults):
            if len(self._always) >= _ALWAYS_KEPT:
                self._always.clear()
            self._always[listed] = result
        return result

    def passes(self, test_id: str, fault: Fault) -> bool:
        """Whether ``fault`` acts on a request it applies to: counts it against ``times``,
        then draws against ``p``."""
        if fault.times is None and fault.p >= 1:
            return True  # nothing to count or draw
        state = self._tests.setdefault(test_id, _TestFaults)
        counts = state.counts
        count = counts.get(fault, 0)
        if fault.times is not None and count >= fault.times:
            return False
        if not count and len(counts) >= COUNTERS_KEPT:
            del counts[next(iter(counts))]
        counts[fault] = count + 1
        return fault.p >= 1 or self._random(state, test_id, fault).random() < fault.p

    def __len__(self) -> int:
        """How many test ids have fault lists or counters kept."""
        return len(self._tests)

    def _random(self, state: _TestFaults, test_id: str, fault: Fault) -> random.Random:
        if fault.seed is None:
            return self._unseeded
        if state.seeded is None:
            state.seeded = {}
        rng = state.seeded.get(fault)
        if rng is None:
            if len(state.seeded) >= COUNTERS_KEPT:
                del state.seeded[next(iter(state.seeded))]
            rng = state.seeded[fault] = random.Random(f"{fault.seed}\x00{test_id}\x00{fault.text}")
        return rng
