"""The library's interactions indexed by request shape: what answers "which cassette
matches" in a dictionary lookup or two.

Each interaction is an :class:`~.indexed.Entry` under its *view* (the ``match:`` fields it
declares and its cassette's normalizers) and the key of its request's shape seen that way
(a long one by its digest: :func:`~.matching.index_key`).
A request is looked up under the whole request first, then under each view in use; among
cassettes, the first by name wins, and its matching interactions, in file order, make the
:class:`~.indexed.Hit`.
"""

from __future__ import annotations

import bisect

from .indexed import WHOLE, Entry, Hit, View
from .matching import RequestShape
from .model import Cassette


def _name(entry: Entry) -> str:
    return entry.cassette.name


def _hit(entries: list[Entry], key: str) -> Hit:
    """The hit for matching ``entries`` (sorted by cassette): those of the first cassette."""
    first = entries[0].cassette
    return Hit(first, tuple(e for e in entries if e.cassette is first), key)


class ShapeIndex:
    """Entries by cassette, and by (view, shape key)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Entry, ...]] = {}
        #: (view, key) -> matching entries, ordered by cassette name, then file order.
        self._index: dict[tuple[View, str], list[Entry]] = {}
        #: (view, key) -> the hit a request gets (the first cassette's entries), made when
        #: first looked up: a large library is indexed at start-up without making them.
        self._hits: dict[tuple[View, str], Hit] = {}
        self._by_cassette: dict[tuple[str, View, str], list[Entry]] = {}
        #: The field selections in use, with how many entries use each; the whole
        #: request (None) always comes first.
        self._projections: dict[View, int] = {WHOLE: 0}

    def add(self, name: str, entries: tuple[Entry, ...]) -> None:
        """Index cassette ``name``'s ``entries`` (it has none indexed yet)."""
        for entry in entries:
            view, key = entry.view, entry.shape.index_key
            bucket = self._index.setdefault((view, key), [])
            bucket.insert(bisect.bisect_right(bucket, name, key=_name), entry)
            self._hits.pop((view, key), None)
            self._by_cassette.setdefault((name, view, key), []).append(entry)
            self._projections[view] = self._projections.get(view, 0) + 1
        self.entries[name] = entries

    def remove(self, name: str) -> None:
        """Forget cassette ``name``'s entries."""
        for entry in self.entries.pop(name, ()):
            key = (entry.view, entry.shape.index_key)
            bucket = self._index[key]
            bucket.remove(entry)
            self._hits.pop(key, None)
            if not bucket:
                del self._index[key]
            self._by_cassette.pop((name, entry.view, entry.shape.index_key), None)
            left = self._projections[entry.view] - 1
            if left or entry.view == WHOLE:
                self._projections[entry.view] = left
            else:
                del self._projections[entry.view]

    def swap(self, name: str, cassette: Cassette, strip: bool = False) -> None:
        """Index ``cassette``'s interactions in place of those of the one indexed under
        ``name``, whose requests are the same: new entries (what was kept for the old ones
        goes with them), same shapes and places (``strip``: the shapes without their
        bodies, :meth:`~.matching.RequestShape.stripped`)."""
        old = self.entries[name]
        new = tuple(
            Entry(
                cassette,
                e.index,
                cassette.interactions[e.index],
                e.shape.stripped() if strip else e.shape,
                e.view,
            )
            for e in old
        )
        for before, after in zip(old, new, strict=True):
            key = (before.view, before.shape.index_key)
            bucket = self._index[key]
            bucket[bucket.index(before)] = after
            self._hits.pop(key, None)
            mine = self._by_cassette[(name, *key)]
            mine[mine.index(before)] = after
        self.entries[name] = new

    def _made(self, key: tuple[View, str]) -> Hit | None:
        """The hit of ``key``, not made yet: made now and kept (``None``: no entry)."""
        bucket = self._index.get(key)
        if bucket is None:
            return None
        hit = self._hits[key] = _hit(bucket, key[1])
        return hit

    def find(self, shape: RequestShape, cassette: str | None = None) -> Hit | None:
        """The interactions matching ``shape`` (in ``cassette`` only, if given), or
        ``None``: those matching on the whole request first, then on fewer fields."""
        if cassette is None:
            whole = (WHOLE, shape.index_key)
            hit = self._hits.get(whole) or self._made(whole)  # the call only the first time
            if hit is not None:
                return hit
        for view in self._projections:
            key = shape.project(*view).index_key
            if cassette is None:
                at = (view, key)
                hit = self._hits.get(at) or self._made(at)
                if hit is not None:
                    return hit
            else:
                entries = self._by_cassette.get((cassette, view, key))
                if entries:
                    return Hit(entries[0].cassette, tuple(entries), key)
        return None
