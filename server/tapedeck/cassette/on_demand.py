"""Cassettes loaded when first asked for (``load: lazy``): the library's cassettes by name.

With ``load: lazy`` start-up only lists the cassette files (names and paths); a request
that names its cassette (``x-tapedeck-cassette``, the pytest plugin's per-test cassette)
loads and checks just that file on first use, and one that names none — matching across
the whole directory — loads every file first, once, with a log line saying so. A file that
cannot be loaded is remembered: every later use raises the same
:class:`~tapedeck.errors.CassetteError` (``file:line: problem``), which the server answers
with a 500 naming it, so no request is ever answered from a broken cassette. Counting and
membership (``len``, ``in``) read no file; iterating loads everything.

The same goes for a cassette whose responses the library dropped to stay within
``library_max_bytes`` (:mod:`.resident`): it is *evicted* — its requests stay indexed, and
its file is read and checked again when it is next asked for, changed or broken since
included (then it answers as a listed file would). Iterating reads no evicted file again.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CassetteError, LibraryError
from .files import listing
from .load import load_cassette
from .model import Cassette

if TYPE_CHECKING:
    from .index import LibraryIndex

log = logging.getLogger("tapedeck")


class Loading(enum.StrEnum):
    """When ``serve`` reads the cassette files (the ``load`` setting)."""

    #: All of them before the server answers: a broken one stops it from starting.
    EAGER = "eager"
    #: Each when first asked for (the whole directory for a request naming no cassette).
    LAZY = "lazy"


#: A listed file: its path and the name errors show for it.
Listed = tuple[str, str]
#: Loads one file: path, cassette name, the name errors show.
LoadOne = Callable[[str, str, str], Cassette]
#: Loads several files, giving each cassette or the error it has.
LoadMany = Callable[[list[tuple[str, str, str]]], list[Cassette | CassetteError]]


def loaders(index: LibraryIndex | None) -> tuple[LoadOne, LoadMany]:
    """How files are loaded on demand: through ``index`` as ``serve`` loads them, or whole.

    One file is parsed without the index cache (reading the cache costs what parsing a few
    hundred files does), by an index of its own that is dropped after (an index keeps the
    entries it made, bodies included, for writing its cache); the whole directory goes
    through the cache, in worker processes for a large one, and the cache is written
    after, as an eager start does.
    """
    one: LoadOne = load_cassette
    if index is not None:
        blank = index.uncached()  # holds no entries: each load gets one of its own

        def one(path: str, name: str, display: str) -> Cassette:
            return blank.uncached().cassette(path, name, display)

    def many(jobs: list[tuple[str, str, str]]) -> list[Cassette | CassetteError]:
        if index is not None:
            index.prepare(jobs)
        out: list[Cassette | CassetteError] = []
        for job in jobs:
            try:
                out.append(index.cassette(*job) if index is not None else load_cassette(*job))
            except CassetteError as exc:
                out.append(exc)
        if index is not None:
            index.save()
        return out

    return one, many


class OnDemand(Mapping[str, Cassette]):
    """Cassettes by name: those loaded, and listed files loaded on first access.

    ``load_one`` reads one listed file; ``load_many`` reads several (all the remaining ones,
    perhaps in parallel), giving each cassette or the error it has; ``insert`` indexes a
    loaded cassette (and must put it in :attr:`loaded`).
    """

    def __init__(
        self,
        listed: dict[str, Listed],
        load_one: LoadOne,
        load_many: LoadMany,
        insert: Callable[[Cassette], None],
    ) -> None:
        self.loaded: dict[str, Cassette] = {}
        self.listed = listed
        #: Cassettes whose responses were dropped (their requests are still in
        #: :attr:`loaded`): read again from their files when next asked for.
        self.evicted: dict[str, Listed] = {}
        #: Files that could not be loaded, with their error (raised again on every use).
        self.broken: dict[str, CassetteError] = {}
        self._load_one = load_one
        # Nothing listed, nothing to load many of: what the loader holds (an index) can go.
        self._load_many = load_many if listed else _nothing
        self._insert = insert
        #: Called once every listed file has been loaded (the serving process keeps what
        #: was made out of the cycle collector's walks).
        self.whole: Callable[[], None] = _done
        #: Whether loading them all is logged (``load: lazy``; files an eager start
        #: checked by their stamps are made quietly, as its start would have made them).
        self.say = True

    def need(self, name: str | None) -> None:
        """Load ``name`` (every file, for ``None``) if listed and not loaded yet."""
        if name is None:
            self.want_all()
        else:
            self.want(name)

    def want(self, name: str) -> None:
        """Load ``name`` if it is listed and not loaded yet, or evicted; raise its error if
        broken."""
        listed = self.listed.pop(name, None)
        if listed is None:
            listed = self.evicted.pop(name, None)
        if listed is not None:
            try:
                cassette = self._load_one(listed[0], name, listed[1])
            except CassetteError as exc:
                self.broken[name] = exc
                log.error("%s", exc)
                raise
            self._insert(cassette)
        elif name in self.broken:
            raise self.broken[name]

    def want_all(self) -> None:
        """Load every listed file (once; the first request that needs them pays, and the log
        says so); raise the first broken file's error while any is broken (but for one
        evicted: its requests are known, and only requests it matches get its error)."""
        if self.listed:
            jobs = [(path, name, display) for name, (path, display) in self.listed.items()]
            self.listed = {}
            started = time.perf_counter()
            for (_, name, _), result in zip(jobs, self._load_many(jobs), strict=True):
                if isinstance(result, CassetteError):
                    self.broken[name] = result
                    log.error("%s", result)
                else:
                    self._insert(result)
            (log.info if self.say else log.debug)(
                "tapedeck: loaded %d cassette(s) in %.2f s: a request named no cassette, so "
                "it matches across the whole directory",
                len(jobs),
                time.perf_counter() - started,
            )
            # Nothing is listed again (evicted files are read one at a time): the index,
            # and the cache file's entries it read, can go.
            self._load_many = _nothing
            self.whole()
        for name, error in self.broken.items():
            if name not in self.loaded:  # an evicted one answers only what it matches
                raise error

    def evict(self, name: str, listed: Listed) -> None:
        """``name``'s responses were dropped: read ``listed`` again on its next use."""
        self.evicted[name] = listed

    def forget(self, name: str) -> None:
        """``name`` is replaced by a cassette just written: its old file is not read."""
        self.listed.pop(name, None)
        self.evicted.pop(name, None)
        self.broken.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in self.listed or name in self.broken

    def __getitem__(self, name: str) -> Cassette:
        self.want(name)
        return self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        self.want_all()
        return iter(self.loaded)

    def __len__(self) -> int:
        broken = sum(1 for name in self.broken if name not in self.loaded)
        return len(self.loaded) + len(self.listed) + broken


def _done() -> None:
    pass


def _nothing(jobs: list[tuple[str, str, str]]) -> list[Cassette | CassetteError]:
    return []


def read_directory(
    root: Path, index: LibraryIndex | None, lazy: bool, defer: bool = False
) -> tuple[list[Cassette], dict[str, Listed], dict[str, Listed]]:
    """The cassettes under ``root`` (through ``index`` if given), the files to load on first
    use instead (all of them, with ``lazy``; with ``defer``, those the index cache vouches
    for: unchanged since they passed every check), and each cassette's file; raise
    :class:`LibraryError` with every problem found (names clashing and links leading
    outside even with ``lazy``)."""
    found, errors = listing(root)
    files = {name: (path, display) for path, name, display in found}
    if lazy:
        if errors:
            raise LibraryError(errors)
        return [], files, {}
    vouched: list[tuple[str, str, str]] = []
    if index is not None and defer:
        vouched, found = index.check(found)
    elif index is not None:
        index.prepare(found)
    cassettes: list[Cassette] = []
    for path, name, display in found:
        try:
            if index is not None:
                cassettes.append(index.cassette(path, name, display))
            else:
                cassettes.append(load_cassette(path, name, display))
        except CassetteError as exc:
            errors.append(exc)
    if errors:
        raise LibraryError(errors)
    return cassettes, {name: (path, display) for path, name, display in vouched}, files
