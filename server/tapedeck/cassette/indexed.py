"""An interaction as the library indexes it (:class:`Entry`), and the interactions of one
cassette that match a request (:class:`Hit`)."""

from __future__ import annotations

from dataclasses import dataclass

from .matching import Fields, RequestShape
from .model import Cassette, Interaction
from .normalize import Normalize

#: How an interaction's request is looked at before matching: the body fields it matches
#: on (``match:``; ``None`` for the whole request) and its cassette's normalizers.
View = tuple[Fields, tuple[Normalize, ...]]
WHOLE: View = (None, ())


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Entry:
    """One interaction, indexed: its cassette, its position there and its request shape.

    Entries compare by identity: a re-recorded cassette gets new ones, so whatever was
    computed for the old ones (keyed by entry) is not mistaken for the new.
    """

    cassette: Cassette
    index: int
    interaction: Interaction
    shape: RequestShape
    #: How its request is looked at (``match:`` fields, the cassette's normalizers).
    view: View = WHOLE


@dataclass(frozen=True, slots=True)
class Hit:
    """The interactions of one cassette that match a request, in file order."""

    cassette: Cassette
    entries: tuple[Entry, ...]
    key: str
