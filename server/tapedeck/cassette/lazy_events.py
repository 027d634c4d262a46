"""Event streams loaded on first use, so a large library's start-up and memory grow with its
interactions, not its events.

A library loaded for serving keeps, for each streamed response, only how many events it has
and its first and last ones (the ``message_start`` that names the reply; the end a listing
shows); the events themselves are read from the cassette's file the first time they are
needed, and kept in a cache bounded by a number of events (the ``event_cache`` setting),
least recently used first out. The file was checked when the library loaded, all but the
events between a stream's first and last (:mod:`.skeleton`); reading them checks the whole
file, and a problem found then (``file:line: field: problem``) answers the request with a
500, as does a file changed since it was indexed (the new text may no longer fit the index:
the message says to restart tapedeck). Nothing of such a stream is sent.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from ..errors import CassetteError
from .model import RecordedEvent

log = logging.getLogger("tapedeck")

#: The default bound of the event cache, in events (about 100 cassettes of 100 events are
#: well under it; a 5,000-cassette library is not held whole).
DEFAULT_EVENT_CACHE = 200_000

#: A file's size and modification time: what says it has not changed.
Stamp = tuple[int, int]


def stamp_of(path: str | Path) -> Stamp:
    """The size and modification time (ns) of ``path``."""
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: Stamp
    interactions: tuple[tuple[RecordedEvent, ...] | None, ...]
    size: int


class EventStore:
    """The events of lazily loaded cassettes, read on first use and kept up to a bound."""

    def __init__(self, budget: int = DEFAULT_EVENT_CACHE) -> None:
        self.budget = budget
        self.held = 0
        self._cache: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        #: How many times a cassette's events were read from its file.
        self.reads = 0

    def events(self, file: str, stamp: Stamp, index: int) -> tuple[RecordedEvent, ...]:
        """The events of interaction ``index`` of ``file``, as indexed at ``stamp``."""
        with self._lock:
            loaded = self._cache.get(file)
            if loaded is not None and loaded.stamp == stamp:
                self._cache.move_to_end(file)
                return _at(loaded, file, index)
        loaded = self._read(file, stamp)
        with self._lock:
            old = self._cache.pop(file, None)
            self.held -= old.size if old is not None else 0
            self._cache[file] = loaded
            self.held += loaded.size
            while self.held > self.budget and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self.held -= evicted.size
        return _at(loaded, file, index)

    def drop(self, file: str) -> None:
        """Forget ``file``'s events (the library dropped its cassette's responses)."""
        with self._lock:
            loaded = self._cache.pop(file, None)
            if loaded is not None:
                self.held -= loaded.size

    def _read(self, file: str, stamp: Stamp) -> _Loaded:
        from .load import load_cassette  # the loader builds on this module

        path = Path(file)
        try:
            now = stamp_of(path)
        except OSError as exc:
            raise CassetteError(file, 0, f"cannot read its events: {exc.strerror}") from None
        if now != stamp:
            raise _changed(file)
        cassette = load_cassette(path, path.stem, file)
        if stamp_of(path) != stamp:
            raise _changed(file)
        self.reads += 1
        events = tuple(
            None if i.response.events is None else tuple(i.response.events)
            for i in cassette.interactions
        )
        return _Loaded(stamp, events, sum(len(e) for e in events if e is not None))


def _changed(file: str) -> CassetteError:
    return CassetteError(
        file,
        0,
        "changed on disk since tapedeck loaded it; restart tapedeck to serve the new version",
    )


def _at(loaded: _Loaded, file: str, index: int) -> tuple[RecordedEvent, ...]:
    events = loaded.interactions[index] if index < len(loaded.interactions) else None
    if events is None:
        raise _changed(file)
    return events


class LazyEvents(Sequence[RecordedEvent]):
    """A streamed response's events, read from ``file`` on first use (see the module).

    Its length and first and last events are known without reading; anything else reads the file
    (once, while the store keeps it). ``signatures`` are the reply's thinking signatures
    with their text, found when the library was loaded.
    """

    __slots__ = (
        "checked",
        "ends",
        "file",
        "interaction",
        "length",
        "line",
        "signatures",
        "stamp",
        "store",
    )

    def __init__(
        self,
        store: EventStore,
        file: str,
        stamp: Stamp,
        interaction: int,
        length: int,
        ends: tuple[RecordedEvent | None, RecordedEvent | None],
        signatures: tuple[tuple[str, str], ...] = (),
        line: int = 0,
    ) -> None:
        self.store = store
        self.file = file
        self.stamp = stamp
        self.interaction = interaction
        self.length = length
        #: The first and last events: what a reply's id and a listing's duration need.
        self.ends = ends
        self.signatures = signatures
        #: The interaction's line in its file (for errors).
        self.line = line
        #: Whether the events read agreed with what the index says of them.
        self.checked = False

    def _events(self) -> tuple[RecordedEvent, ...]:
        events = self.store.events(self.file, self.stamp, self.interaction)
        if not self.checked:
            first, last = self.ends
            if not events or events[0] != first or events[-1] != last:
                raise CassetteError(
                    self.file,
                    self.line,
                    "response.events: the first or last event read now is not the one "
                    "start-up read; restart tapedeck (and if that does not help, report "
                    "the file's layout)",
                )
            if len(events) != self.length:
                # The start-up scan counts item lines; a quoted text continued on a line
                # that looks like an item (YAML allows it) is counted too. The read is right.
                log.warning(
                    "%s:%d: %d events, where the start-up scan counted %d; serving the %d",
                    self.file,
                    self.line,
                    len(events),
                    self.length,
                    len(events),
                )
                self.length = len(events)
            self.checked = True
        return events

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, i: int) -> RecordedEvent: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[RecordedEvent]: ...

    def __getitem__(self, i: int | slice) -> RecordedEvent | Sequence[RecordedEvent]:
        first, last = self.ends
        if i == 0 and first is not None:
            return first
        if (i == -1 or i == self.length - 1) and last is not None:
            return last
        return self._events()[i]

    def __iter__(self) -> Iterator[RecordedEvent]:
        return iter(self._events())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(other) == self.length and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.file, self.interaction))

    def __repr__(self) -> str:
        return f"LazyEvents({self.file!r}, interaction {self.interaction}, {self.length} events)"
