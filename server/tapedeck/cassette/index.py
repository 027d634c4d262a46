"""The library index: what a serving tapedeck keeps of each cassette, and a cache of it.

Each cassette is read and checked once, but for the middle of its streams (:mod:`.skeleton`:
they are checked on first use); what the server keeps is its index entry —
requests, response heads, and for each stream its event count and first and last events (the events
stay in the file, :mod:`.lazy_events`). The entries are also written to a cache file
(:mod:`.index_cache`), keyed by each cassette's size and modification time. The next start
parses only the files that changed: :meth:`LibraryIndex.prepare` makes the others from
their entries, or :meth:`LibraryIndex.check` only tells them apart by the file's first
line, their cassettes made from the entries when first needed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CassetteError
from .files import digest_of, read_stamped
from .index_cache import IndexCache, known
from .index_entry import entry_of, from_entry, served, thinks
from .lazy_events import EventStore, Stamp, stamp_of
from .load import parse_cassette
from .model import Cassette
from .skeleton import parse_start

#: Files to parse per worker process before it pays to start one (starting a process and
#: importing tapedeck costs about as much CPU as reading the request sections of a couple of
#: thousand cassettes, :mod:`.skeleton`).
PARALLEL_FROM = 2000


def _parse(file: str, name: str, display: str) -> tuple[Cassette, Stamp, Any, str] | CassetteError:
    """One file read and checked as start-up does: the cassette with its stamp, when only
    the ends of its streams were read (:mod:`.skeleton`) each one's event count, and the
    file's digest; or the :class:`CassetteError` it has."""
    try:
        text, stamp, digest = read_stamped(file, display)
        started = parse_start(text, display, name)
        if started is not None:
            cassette, counts = started
            # A reply that thinks needs its signatures now (validation compares them):
            # only the whole stream has them.
            if not any(thinks(cassette.interactions[i].request) for i in counts):
                return cassette, stamp, counts, digest
        return parse_cassette(text, display, name, order=True), stamp, None, digest
    except CassetteError as exc:
        return exc


def _parse_file(job: tuple[str, str, str]) -> Any:
    """A worker's job: the index entry of one file, or the :class:`CassetteError` it has."""
    parsed = _parse(*job)
    return parsed if isinstance(parsed, CassetteError) else entry_of(*parsed)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused: parsing makes many containers and no cycles, and
    each collection would walk every object made so far (a tenth of a large cold start's
    CPU). Keeping what was made out of later walks for good (``gc.freeze``) is the serving
    process's decision (:func:`tapedeck.server.runner.run`), not the loader's: a library
    also loads inside other programs (the pytest plugin's server on a thread)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _cores() -> int:
    """The CPUs this process may run on (``taskset`` or a container may allow fewer than
    the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return os.cpu_count() or 1


class LibraryIndex:
    """Index entries for one cassette directory, from the cache file where still valid."""

    def __init__(self, root: Path, cache_dir: Path | None, store: EventStore) -> None:
        self.root = root
        self._prefix = len(str(root)) + 1
        self.store = store
        self.cache = None if cache_dir is None else IndexCache(cache_dir, root)
        self._read_cache: dict[str, Any] | None = None
        self._entries: dict[str, Any] = {}
        #: The cassettes :meth:`prepare` made, from the cache or parsed (or the error a file
        #: has).
        self._ready: dict[str, Cassette | CassetteError] = {}
        #: How many cassettes were parsed (not found in the cache) by this load.
        self.parsed = 0
        #: Files :meth:`check` found unchanged: their cached entries stay in the cache file
        #: until made again.
        self._kept: set[str] = set()
        #: Files whose bytes are those of their entry though their modification time is
        #: not, with their stamp now (their entries are written again with it).
        self._restamped: dict[str, Stamp] = {}
        #: Whether the cache file's entries are exactly the files :meth:`check` found
        #: unchanged (then nothing is written unless an entry is made).
        self._kept_whole = False

    @property
    def _cached(self) -> dict[str, Any]:
        """The cache file's entries, read when first needed (``load: lazy`` may never)."""
        if self._read_cache is None:
            self._read_cache = {} if self.cache is None else self.cache.entries()
        return self._read_cache

    def uncached(self) -> LibraryIndex:
        """An index of the same directory and event store that neither reads nor writes the
        cache (for loading a few files on demand)."""
        return LibraryIndex(self.root, None, self.store)

    def prepare(self, files: Sequence[tuple[str, str, str]]) -> None:
        """Make, ahead of :meth:`cassette`, the cassettes of ``files``: from the cache where
        its entry is still valid, else parsed (:meth:`_make`); the cycle collector paused
        meanwhile."""
        with _collector_paused():  # the cache file read too
            missing = []
            for path, name, display in files:
                key, entry = self._valid(path, name, display)
                if entry is None:
                    missing.append((path, name, display))
                else:
                    self._entries[key] = entry
                    self._ready[path] = from_entry(entry, display, path, self.store)
            self._make(missing)

    def check(
        self, files: Sequence[tuple[str, str, str]]
    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """Split ``files`` by the cache file's first line of stamps alone: those unchanged
        since their entry was made (an entry is only made for a file that passed every
        check), and the others, parsed now ahead of :meth:`cassette` (their cassettes, or
        the errors they have). The entries are not read."""
        with _collector_paused():
            stamps = {} if self.cache is None else self.cache.stamps()
            unchanged, missing = [], []
            for job in files:
                path, name, _ = job
                key = self._key(path)
                held = stamps.get(key)
                if held is not None and self._unchanged(key, path, name, held):
                    unchanged.append(job)
                    self._kept.add(key)
                else:
                    missing.append(job)
            self._kept_whole = len(unchanged) == len(stamps)
            self._make(missing)
        return unchanged, missing

    def _make(self, missing: Sequence[tuple[str, str, str]]) -> None:
        """Parse ``missing`` files: in worker processes when there are many
        (:data:`PARALLEL_FROM`) and cores to spare, else here."""
        workers = min(_cores(), len(missing) // PARALLEL_FROM)
        if workers < 2:
            for path, name, display in missing:
                self._ready[path] = self._parse_here(path, name, display)
        else:
            self._parse_in_workers(missing, workers)

    def _parse_in_workers(self, missing: Sequence[tuple[str, str, str]], workers: int) -> None:
        """The cassettes of ``missing`` files, their entries made by ``workers`` processes."""
        context = multiprocessing.get_context("spawn")
        chunk = max(1, len(missing) // (workers * 8))
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for (path, _, display), result in zip(
                missing, pool.map(_parse_file, missing, chunksize=chunk), strict=True
            ):
                if isinstance(result, CassetteError):
                    self._ready[path] = result
                    continue
                self._entries[self._key(path)] = result
                self._ready[path] = from_entry(result, display, path, self.store)
        self.parsed += len(missing)

    def cassette(self, path: str, name: str, display: str) -> Cassette:
        """The cassette at ``path``, lazy; parsed only when the cache has no valid entry."""
        ready = self._ready.pop(path, None)
        if ready is None:
            key, entry = self._valid(path, name, display)
            if entry is None:
                ready = self._parse_here(path, name, display, key)
            else:
                self._entries[key] = entry
                ready = from_entry(entry, display, path, self.store)
        if isinstance(ready, CassetteError):
            raise ready
        return ready

    def _parse_here(
        self, path: str, name: str, display: str, key: str | None = None
    ) -> Cassette | CassetteError:
        """Parse one file in this process: the cassette served from it, its entry kept."""
        parsed = _parse(path, name, display)
        if isinstance(parsed, CassetteError):
            return parsed
        self.parsed += 1
        entry = entry_of(*parsed)
        self._entries[key or self._key(path)] = entry
        return served(parsed[0], entry, display, path, self.store)

    def _key(self, path: str) -> str:
        """The file's key in the cache: its path under the root, with ``/``."""
        return path[self._prefix :].replace(os.sep, "/")

    def _valid(self, path: str, name: str, display: str) -> tuple[str, Any]:
        """The file's key, and its cached entry if the file has not changed since (with
        the file's stamp now, if only that changed)."""
        key = self._key(path)
        entry = self._cached.get(key)
        if entry is None:
            return key, None
        stamp = self._unchanged(key, path, name, known(entry))
        if stamp is None:
            return key, None
        if list(stamp) != entry["stamp"]:
            entry = {**entry, "stamp": list(stamp)}
        return key, entry

    def _unchanged(self, key: str, path: str, name: str, held: list[Any]) -> Stamp | None:
        """The file's stamp if it is the file ``held`` (``[name, size, mtime_ns, sha256]``,
        :func:`.index_cache.known`) describes: the same name and stamp or, its modification
        time alone changed (copied, checked out again, a cache restored in CI), the same
        bytes."""
        stamp = stamp_of(path)
        if held[0] != name or held[1] != stamp[0]:
            return None
        if held[2] != stamp[1] and self._restamped.get(key) != stamp:
            if held[3] is None or digest_of(path) != held[3]:
                return None
            self._restamped[key] = stamp
        return stamp

    def save(self, unless_few: bool = False) -> None:
        """Write the entries of this load, and those of the files :meth:`check` found
        unchanged, to the cache file, if they changed; with ``unless_few``, not if fewer
        files were parsed than a tenth of those found unchanged (rewriting a large cache
        costs more than parsing them again next time). The entries read are let go after:
        a later save reads the file again."""
        if self.cache is None or (self._kept_whole and not self._entries):
            return
        if unless_few and self.parsed * 10 < len(self._kept):
            return
        cached = self._cached
        files = {key: cached[key] for key in self._kept if key in cached}
        files.update(self._entries)
        self._read_cache = None
        if files != cached:
            self.cache.write(files)
