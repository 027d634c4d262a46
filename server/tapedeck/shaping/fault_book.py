"""Which faults apply to a request, and whether each fires this time.

Faults come from three places: the server-wide list (``--fault`` / config, replaceable
through the admin API), per-test lists set through the admin API with an
``x-tapedeck-test-id`` header, and a request's own ``x-tapedeck-fault`` header (which
replaces the others for that request). ``times`` counters and seeded random streams are
kept per test id, so one test's requests never change what fires for another; so are the
buckets of ``quota`` faults (:mod:`tapedeck.shaping.quota`), which run on the clocks of
:mod:`tapedeck.shaping.clock`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .clock import Clocks
from .faults import Fault, FaultKind
from .quota import Quotas

#: Fault lists whose result is kept (requests may each send a new ``x-tapedeck-fault``).
_ALWAYS_KEPT = 256


class FaultBook:
    """The fault lists and the state that gates them. Use from one event loop."""

    def __init__(self, defaults: Sequence[Fault] = ()) -> None:
        self.defaults = tuple(defaults)
        self.server_wide = self.defaults
        self.scoped: dict[str, tuple[Fault, ...]] = {}
        self._counts: dict[tuple[str, Fault], int] = {}
        self._seeded: dict[tuple[str, Fault], random.Random] = {}
        self._unseeded = random.Random()
        #: What fires from lists with no ``times`` or ``p``: the same every time, so
        #: worked out once (and the same tuple handed out, which later caches key on).
        self._always: dict[tuple[tuple[Fault, ...], bool], tuple[Fault, ...]] = {}
        #: The buckets of quota faults, and the clocks they run on.
        self.quotas = Quotas()
        self.clocks = Clocks()

    def active(self, test_id: str) -> tuple[Fault, ...]:
        """The faults for a request with this test id (``""`` for none)."""
        return self.scoped.get(test_id, self.server_wide) if test_id else self.server_wide

    def put(self, faults: Sequence[Fault], test_id: str | None) -> None:
        """Set the faults for one test id, or server-wide; their counters start afresh."""
        if test_id:
            self.scoped[test_id] = tuple(faults)
        else:
            self.server_wide = tuple(faults)
        self.rewind(test_id or None)

    def clear(self, test_id: str | None) -> None:
        """Drop one test id's faults, or restore the server-wide faults it started with."""
        if test_id:
            self.scoped.pop(test_id, None)
        else:
            self.server_wide = self.defaults
        self.rewind(test_id or None)

    def rewind(self, test_id: str | None) -> None:
        """Restart ``times`` counters and seeded decisions and refill quotas (one test
        id's, or all)."""
        for table in (self._counts, self._seeded):
            for key in [k for k in table if test_id is None or k[0] == test_id]:
                del table[key]
        self.quotas.rewind(test_id)

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
        key = (test_id, fault)
        count = self._counts.get(key, 0)
        if fault.times is not None and count >= fault.times:
            return False
        self._counts[key] = count + 1
        return fault.p >= 1 or self._random(key, fault).random() < fault.p

    def _random(self, key: tuple[str, Fault], fault: Fault) -> random.Random:
        if fault.seed is None:
            return self._unseeded
        rng = self._seeded.get(key)
        if rng is None:
            rng = self._seeded[key] = random.Random(f"{fault.seed}\x00{key[0]}\x00{fault.text}")
        return rng
