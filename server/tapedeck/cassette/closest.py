"""Explaining a miss: the recorded interaction closest to a request, and how they differ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from .differences import Difference, compare, weight
from .matching import RequestShape

if TYPE_CHECKING:
    from .library import Entry


@dataclass(frozen=True, slots=True)
class Closest:
    """A miss explained: ``shown`` to the client (with values), ``logged`` without them."""

    shown: str
    logged: str


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
    if first is None:
        return Closest(where, where)
    return Closest(f"{where}: {first.shown()}", f"{where}: {first.logged()}")
