"""Explaining a miss: the recorded interaction closest to a request, and how they differ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from .differences import Difference, compare, weight
from .indexed import Entry
from .matching import RequestShape

#: Differences from the closest interaction that a miss keeps (the first is the one shown).
DIFFERENCES_KEPT = 20


@dataclass(frozen=True, slots=True)
class Closest:
    """A miss explained: ``shown`` to the client (with values), ``logged`` without them;
    the closest interaction, if there is one, and the first :data:`DIFFERENCES_KEPT` ways
    the request differs from it."""

    shown: str
    logged: str
    entry: Entry | None = None
    differences: tuple[Difference, ...] = ()


def closest(candidates: Sequence[Entry], shape: RequestShape, scope: str) -> Closest:
    """The candidate that differs least from ``shape`` (weighed by how much differs: a
    missing turn of a conversation outweighs a changed word), with its first difference."""
    if not candidates:
        return Closest(f"{scope} holds no interactions", f"{scope} holds no interactions")
    best: tuple[int, Entry, Difference | None] | None = None
    for entry in candidates:
        found = compare(shape.project(*entry.view), entry.shape)
        first = next(found, None)
        count = sum(weight(d) for d in islice(found, 200))
        count += weight(first) if first is not None else 0
        if entry.shape.path != shape.path or entry.shape.method != shape.method:
            count += 1_000_000
        if best is None or count < best[0]:
            best = (count, entry, first)
    assert best is not None
    _, entry, first = best
    where = (
        f"closest is {entry.cassette.name} (interaction {entry.index}, "
        f"{entry.cassette.path}:{entry.interaction.line})"
    )
    listed = tuple(islice(compare(shape.project(*entry.view), entry.shape), DIFFERENCES_KEPT))
    if first is None:
        return Closest(where, where, entry, listed)
    return Closest(f"{where}: {first.shown()}", f"{where}: {first.logged()}", entry, listed)
