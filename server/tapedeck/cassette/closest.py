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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

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
    """A miss explained: :attr:`shown` to the client (with values), :attr:`logged` without
    them; the closest interaction, if there is one, and the first :data:`DIFFERENCES_KEPT`
    ways the request differs from it."""

    #: ``closest is NAME (interaction I, FILE:LINE)``, or why there is none.
    where: str
    entry: Entry | None = None
    differences: tuple[Difference, ...] = ()
    #: The client that sent the request, when known (:meth:`with_client`).
    client: Client | None = None

    @property
    def recorded_client(self) -> Client | None:
        """The client that recorded the closest interaction, when the cassette says."""
        return None if self.entry is None else self.entry.interaction.request.client

    @property
    def note(self) -> str:
        """`` (recorded with A; this request is from B)`` when the clients differ, else ``""``."""
        found = mismatch(self.recorded_client, self.client)
        return "" if found is None else f" ({found})"

    @property
    def shown(self) -> str:
        """Where, the first difference with its values, and the clients if they differ."""
        first = f": {self.differences[0].shown()}" if self.differences else ""
        return f"{self.where}{first}{self.note}"

    @property
    def logged(self) -> str:
        """As :attr:`shown`, the values described rather than quoted."""
        first = f": {self.differences[0].logged()}" if self.differences else ""
        return f"{self.where}{first}{self.note}"

    def with_client(self, client: Client | None) -> Closest:
        """This explanation for a request sent by ``client``: when the closest interaction
        was recorded by another client or release, it says so."""
        return replace(self, client=client)

    def redacted(self, redact: Callable[[Any], Any]) -> Closest:
        """This explanation with each value passed through ``redact`` first, so that a
        window cut from a long text shows no part of a secret it would have cut."""
        return replace(
            self,
            differences=tuple(
                Difference(d.field, redact(d.incoming), redact(d.recorded))
                for d in self.differences
            ),
        )


Rank = tuple[bool, int, int]


def rank(shape: RequestShape, entry: Entry) -> tuple[Rank, list[Difference]]:
    """How far ``entry`` is from ``shape`` (lower is closer: a different endpoint, the
    differing fields, the characters differing), and the first differences."""
    found = list(islice(compare(shape.project(*entry.view), entry.shape), DIFFERENCES_COUNTED))
    elsewhere = entry.shape.path != shape.path or entry.shape.method != shape.method
    return (elsewhere, sum(weight(d) for d in found), sum(d.size() for d in found)), found


def closest(
    candidates: Sequence[Entry], shape: RequestShape, scope: str, unseen: int = 0
) -> Closest:
    """The candidate closest to ``shape`` (see the module's ranking), with its differences
    (``unseen``: interactions not among the candidates because their requests are out of
    memory; the explanation says how many)."""
    note = (
        f" ({unseen} interaction(s) not compared: their requests are out of memory, "
        "setting library_request_max_bytes)"
        if unseen
        else ""
    )
    if not candidates:
        return Closest(f"{scope} holds no interactions{' in memory' if unseen else ''}{note}")
    best: tuple[Rank, Entry, list[Difference]] | None = None
    for entry in candidates:
        distance, found = rank(shape, entry)
        if best is None or distance < best[0]:
            best = (distance, entry, found)
    assert best is not None
    _, entry, found = best
    where = (
        f"closest is {entry.cassette.name} (interaction {entry.index}, "
        f"{entry.cassette.path}:{entry.interaction.line}){note}"
    )
    return Closest(where, entry, tuple(found[:DIFFERENCES_KEPT]))
