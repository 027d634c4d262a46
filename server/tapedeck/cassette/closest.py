"""Explaining a miss: the recorded interaction closest to a request, and how they differ.

The closest is the one with, in this order:

1. the request's method and path (an interaction for another endpoint comes last);
2. the fewest differing fields (a field of a value one side lacks counts once for each
   value in it: a missing turn of a conversation outweighs a changed word);
3. the fewest characters differing (:meth:`Difference.size`: ``"Hello there"`` is closer
   to ``"Hello"`` than to ``"Write a haiku"``);
4. the first by cassette name and position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice

from .clients import mismatch
from .differences import Difference, compare, weight
from .indexed import Entry
from .matching import RequestShape
from .model import Client

#: Differences from the closest interaction that a miss keeps (the first is the one shown).
DIFFERENCES_KEPT = 20
#: Differences counted per interaction when ranking (a very different one stops there).
DIFFERENCES_COUNTED = 200


@dataclass(frozen=True, slots=True)
class Closest:
    """A miss explained: ``shown`` to the client (with values), ``logged`` without them;
    the closest interaction, if there is one, and the first :data:`DIFFERENCES_KEPT` ways
    the request differs from it."""

    shown: str
    logged: str
    entry: Entry | None = None
    differences: tuple[Difference, ...] = ()
    #: The client that sent the request, when known (:meth:`with_client`).
    client: Client | None = None

    @property
    def recorded_client(self) -> Client | None:
        """The client that recorded the closest interaction, when the cassette says."""
        return None if self.entry is None else self.entry.interaction.request.client

    def with_client(self, client: Client | None) -> Closest:
        """This explanation for a request sent by ``client``: when the closest interaction
        was recorded by another client or release, both messages say so."""
        note = mismatch(self.recorded_client, client)
        if note is None:
            return replace(self, client=client)
        return replace(
            self, shown=f"{self.shown} ({note})", logged=f"{self.logged} ({note})", client=client
        )


Rank = tuple[bool, int, int]


def rank(shape: RequestShape, entry: Entry) -> tuple[Rank, list[Difference]]:
    """How far ``entry`` is from ``shape`` (lower is closer: a different endpoint, the
    differing fields, the characters differing), and the first differences."""
    found = list(islice(compare(shape.project(*entry.view), entry.shape), DIFFERENCES_COUNTED))
    elsewhere = entry.shape.path != shape.path or entry.shape.method != shape.method
    return (elsewhere, sum(weight(d) for d in found), sum(d.size() for d in found)), found


def closest(candidates: Sequence[Entry], shape: RequestShape, scope: str) -> Closest:
    """The candidate closest to ``shape`` (see the module's ranking), with its differences."""
    if not candidates:
        return Closest(f"{scope} holds no interactions", f"{scope} holds no interactions")
    best: tuple[Rank, Entry, list[Difference]] | None = None
    for entry in candidates:
        distance, found = rank(shape, entry)
        if best is None or distance < best[0]:
            best = (distance, entry, found)
    assert best is not None
    _, entry, found = best
    where = (
        f"closest is {entry.cassette.name} (interaction {entry.index}, "
        f"{entry.cassette.path}:{entry.interaction.line})"
    )
    listed = tuple(found[:DIFFERENCES_KEPT])
    if not listed:
        return Closest(where, where, entry, listed)
    first = listed[0]
    return Closest(f"{where}: {first.shown()}", f"{where}: {first.logged()}", entry, listed)
