"""The cassette library: every cassette under one directory, loaded and indexed at startup.

All files are read and checked when the library loads, so a broken cassette stops the
server before it answers anything; explicit selection by name only looks names up in what
was loaded. Loaded for serving (with a :class:`~.index.LibraryIndex`), a file is read at
start-up without the middle of its streams (:mod:`.skeleton`), which is read and checked
when first used (:mod:`.lazy_events`). With ``load: lazy`` the files are only listed at
start-up, and each is loaded when first asked for (:mod:`.on_demand`). A recording adds or
replaces one cassette; only that cassette's interactions are re-indexed. Cassettes used
are held whole within ``library_max_bytes``; past it the least recently used keep only their
requests, and past ``library_request_max_bytes`` only their keys' digests (:mod:`.resident`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CassetteError
from .by_shape import ShapeIndex
from .closest import Closest, closest
from .files import safe_name
from .indexed import Entry, Hit, View

if TYPE_CHECKING:
    from .index import LibraryIndex
from .matching import MatchRules, RequestShape
from .model import Cassette
from .on_demand import Listed, OnDemand, loaders, read_directory
from .replies import Replies, Reply
from .resident import (
    DEFAULT_LIBRARY_MAX_BYTES,
    DEFAULT_REQUEST_MAX_BYTES,
    Residency,
    bare,
    light,
    request_weight,
    same_requests,
    weight,
)
from .signatures import ThinkingIndex
from .threads import Thread, rebuilt, reply_id


class CassetteLibrary:
    """The loaded cassettes of one directory, indexed by request shape."""

    def __init__(
        self,
        root: Path,
        cassettes: list[Cassette],
        rules: MatchRules,
        listed: dict[str, Listed] | None = None,
        index: LibraryIndex | None = None,
        max_bytes: int = DEFAULT_LIBRARY_MAX_BYTES,
        files: dict[str, Listed] | None = None,
        request_max_bytes: int = DEFAULT_REQUEST_MAX_BYTES,
    ) -> None:
        self.root = root
        self.rules = rules
        #: Listed files (``load: lazy``) loaded when first asked for, and evicted cassettes
        #: read again when next used.
        self._lazy = OnDemand(dict(listed or {}), *loaders(index), self._insert_loaded)
        self._loaded = self._lazy.loaded
        #: Every cassette by name, whole (one listed or evicted is read on access).
        self.cassettes: Mapping[str, Cassette] = self._lazy
        #: Each cassette's file, to read it again once evicted (a cassette without one, made
        #: in memory, is never evicted).
        self._files: dict[str, Listed] = {**(files or {}), **(listed or {})}
        #: Cassettes held whole, and the requests of those evicted, within their bounds.
        self.resident = Residency(max_bytes, request_max_bytes)
        #: Evicted cassettes whose requests were dropped too (:func:`.resident.bare`).
        self._bare: set[str] = set()
        self._store = None if index is None else index.store
        self._last: Cassette | None = None  # the one that answered last: held already
        #: Grows by one with every cassette added or replaced after loading.
        self.version = 0
        self._shapes = ShapeIndex()
        self._entries = self._shapes.entries
        #: reply id -> the interaction that answered it, with its rebuilt request.
        self._replies = Replies()
        #: The thinking blocks held, by signature: made when validation first asks.
        self._thinking: ThinkingIndex | None = None
        for cassette in sorted(cassettes, key=lambda c: c.name):
            self._insert(cassette)

    def _insert(self, cassette: Cassette) -> None:
        entries = []
        for i, interaction in enumerate(cassette.interactions):
            r = interaction.request
            body = rebuilt(r.body, self._thread)
            shape = self.rules.shape(r.method, r.path, r.query, r.headers, body)
            said = reply_id(interaction)
            if said is not None:
                self._replies.add(said, Reply(cassette.name, body, interaction, i))
            view: View = (r.match, cassette.normalize)
            entries.append(Entry(cassette, i, interaction, shape.project(*view), view))
        self._loaded[cassette.name] = cassette
        self._shapes.add(cassette.name, tuple(entries))
        if self._thinking is not None:
            self._thinking.add(cassette.name, cassette.interactions)

    def _hold(self, cassette: Cassette) -> None:
        """Count ``cassette`` as held whole and used last (it answered, was recorded or
        read again); evict what no longer fits."""
        if cassette.name in self._files:
            for name in self.resident.use(cassette.name, weight(cassette)):
                self._evict(name)

    def _evict(self, name: str) -> None:
        """Drop ``name``'s responses, keeping its requests indexed (and the requests of
        those evicted first, past their bound); its file is read again when it next
        answers a request (:mod:`.resident`)."""
        held, file = self._loaded.get(name), self._files.get(name)
        if held is None or file is None:
            return
        self._swap(name, light(held))
        self._lazy.evict(name, file)
        if self._store is not None:
            self._store.drop(str(file[0]))
        for gone in self.resident.park(name, request_weight(held)):
            kept = self._loaded.get(gone)
            if kept is not None and gone in self._lazy.evicted:
                self._swap(gone, bare(kept), stripped=True)

    def _swap(self, name: str, cassette: Cassette, stripped: bool = False) -> None:
        """Put ``cassette`` in place of the one held under ``name``, whose requests are the
        same (``stripped``: without their bodies): new entries (what was kept for the old
        ones goes with them), same shapes."""
        self._shapes.swap(name, cassette, stripped)
        self._last = None  # it may be the one swapped out
        self._replies.swap(name, cassette, stripped)
        self._loaded[name] = cassette
        (self._bare.add if stripped else self._bare.discard)(name)

    def _insert_loaded(self, cassette: Cassette) -> None:
        """Index a cassette loaded on first use (counted once it answers); what was worked
        out from the library before (a request's shape, the thinking served) is worked out
        again. One read again after its eviction takes its place, held, and is new to the
        library only if its file changed since."""
        name = cassette.name
        held = self._loaded.get(name)
        if held is None:
            self._insert(cassette)
        elif (same := same_requests(cassette, held)) is not None:
            self._swap(name, same)
            if self._thinking is not None:  # its answers may have changed on disk
                self._thinking.add(name, same.interactions)
            self._hold(same)
            if held.size == same.size:
                return
        else:
            self._remove(name)
            self._insert(cassette)
            self._hold(cassette)
        self.version += 1

    def conversation(self, reply_id: str) -> Thread | None:
        """The conversation the reply ``reply_id`` ended, if a cassette holds that reply
        (what a message-thread continuation from it continues; :mod:`.threads`)."""
        if self._lazy.listed and reply_id not in self._replies.by_id:
            self._lazy.want_all()
        return self._thread(reply_id, True)

    def when_whole(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once the files listed to load on first use are all loaded."""
        self._lazy.whole = hook

    def thinking_served(self, signature: str, text: str) -> bool:
        """Whether a cassette holds a thinking block with ``signature`` and ``text``
        (:mod:`.signatures`). The first call reads every cassette (an evicted one's file
        again); the index then follows each cassette added, read again or replaced."""
        if self._thinking is None:
            self._thinking = ThinkingIndex.of(self.cassettes)
        return self._thinking.served(signature, text)

    def _thread(self, said: str, loud: bool = False) -> Thread | None:
        """The conversation reply ``said`` ended, its evicted cassette read again first (if
        that is broken now: its error if ``loud``, else no conversation is known)."""
        reply = self._replies.by_id.get(said)
        if reply is not None and reply.cassette in self._lazy.evicted:
            try:
                self._lazy.want(reply.cassette)
            except CassetteError:
                if loud:
                    raise
                return None
        return self._replies.thread(said)

    def _remove(self, name: str) -> None:
        self._replies.remove(name)
        self._shapes.remove(name)
        self._loaded.pop(name, None)
        self._bare.discard(name)
        if self._thinking is not None:
            self._thinking.remove(name)

    def add(self, cassette: Cassette, file: Path | None = None) -> None:
        """Add a cassette (or replace the one of the same name), e.g. just recorded to
        ``file`` (read again once evicted); only its interactions are indexed again."""
        self._lazy.forget(cassette.name)
        if file is not None:
            self._files[cassette.name] = (str(file), cassette.path)
        self._remove(cassette.name)
        self._insert(cassette)
        self._hold(cassette)
        self.version += 1

    def entries(self, name: str) -> tuple[Entry, ...]:
        """The indexed interactions of cassette ``name`` (none if there is none); an evicted
        cassette's are those of its requests (its file is not read)."""
        if name in self._lazy.listed:
            self._lazy.want(name)
        return self._entries.get(name, ())

    @classmethod
    def load(
        cls,
        root: Path,
        rules: MatchRules | None = None,
        index: LibraryIndex | None = None,
        lazy: bool = False,
        max_bytes: int = DEFAULT_LIBRARY_MAX_BYTES,
        request_max_bytes: int = DEFAULT_REQUEST_MAX_BYTES,
        defer: bool = False,
    ) -> CassetteLibrary:
        """Load every ``*.yaml``/``*.yml`` under ``root``; raise :class:`LibraryError`.

        With an ``index`` the cassettes are kept as index entries, their events read on
        first use, and only files the index cache does not know are parsed
        (:mod:`.index`). With ``lazy`` the files are only listed (names clashing and links
        leading outside are still errors here) and each is loaded when first asked for
        (:mod:`.on_demand`); with ``defer``, only the files the index cache does not vouch
        for are loaded now, the others as with ``lazy``. The responses held are bounded by
        ``max_bytes``, the requests evicted cassettes keep by ``request_max_bytes``."""
        cassettes, listed, files = read_directory(root, index, lazy, defer)
        rules = rules or MatchRules()
        library = cls(root, cassettes, rules, listed, index, max_bytes, files, request_max_bytes)
        library._lazy.say = lazy
        return library

    def __len__(self) -> int:
        return len(self.cassettes)

    def safe_name(self, raw: str) -> str:
        """A client-supplied cassette name, normalized (no suffix), checked to stay inside
        (:func:`.files.safe_name`); raise :class:`UnsafeNameError`."""
        return safe_name(self.root, raw, self.cassettes)

    def find(self, shape: RequestShape, cassette: str | None = None) -> Hit | None:
        """The interactions matching ``shape`` (in ``cassette`` only, if given), or ``None``
        (then :meth:`closest` explains why).

        Interactions that match on the whole request win over those that declare fewer
        fields (``match:``); among cassettes, the first by name.
        """
        lazy = self._lazy
        if lazy.listed or lazy.broken:
            self._lazy.need(cassette)
        hit = self._shapes.find(shape, cassette)
        if hit is None or hit.cassette is self._last:  # the cassette used last: held
            return hit
        return self._used(shape, cassette, hit)

    def _used(self, shape: RequestShape, cassette: str | None, hit: Hit) -> Hit | None:
        """``hit``, held; its cassette's file read again first if it was evicted (raising
        its :class:`CassetteError` if it is broken now); if the file changed so that the
        request no longer matches it, the hit found then."""
        lazy = self._lazy
        for _ in range(len(self._entries) + 1):
            name = hit.cassette.name
            if name not in lazy.evicted and name not in lazy.broken:
                break
            lazy.want(name)
            found = self._shapes.find(shape, cassette)
            if found is None:
                return None
            hit = found
        self._hold(hit.cassette)
        self._last = hit.cassette
        return hit

    def closest(self, shape: RequestShape, cassette: str | None = None) -> Closest:
        """Why nothing matches ``shape``: the closest interaction and the first difference.

        This compares the request with every interaction (in ``cassette``, if given): it is
        for the message of a miss, not for every request.
        """
        if self._lazy.listed or self._lazy.broken:
            self._lazy.need(cassette)
        if cassette is not None and cassette in self._bare:  # one file: read it again
            self._lazy.want(cassette)
        names = [cassette] if cassette is not None else sorted(self._entries)
        candidates = [e for n in names if n not in self._bare for e in self._entries.get(n, ())]
        unseen = sum(len(self._entries.get(n, ())) for n in names if n in self._bare)
        scope = f"cassette {cassette!r}" if cassette else "the cassette directory"
        return closest(candidates, shape, scope, unseen)
