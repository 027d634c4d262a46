"""The cassette library: every cassette under one directory, loaded and indexed at startup.

All files are read and checked when the library loads, so a broken cassette stops the
server before it answers anything, and no request ever makes tapedeck read a file:
explicit selection by name only looks names up in what was loaded. A recording adds or
replaces one cassette; only that cassette's interactions are re-indexed.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import CassetteError, LibraryError, UnsafeNameError
from .differences import Difference, compare
from .load import load_cassette
from .matching import MatchRules, RequestShape
from .model import Cassette, Interaction

SUFFIXES = (".yaml", ".yml")
Fields = tuple[str, ...] | None


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
    #: The body fields it matches on (``match:``), or ``None`` for the whole request.
    fields: Fields = None


@dataclass(frozen=True, slots=True)
class Hit:
    """The interactions of one cassette that match a request, in file order."""

    cassette: Cassette
    entries: tuple[Entry, ...]
    key: str


def _name(entry: Entry) -> str:
    return entry.cassette.name


def _hit(entries: list[Entry], key: str) -> Hit:
    """The hit for matching ``entries`` (sorted by cassette): those of the first cassette."""
    first = entries[0].cassette
    return Hit(first, tuple(e for e in entries if e.cassette is first), key)


class CassetteLibrary:
    """The loaded cassettes of one directory, indexed by request shape."""

    def __init__(self, root: Path, cassettes: list[Cassette], rules: MatchRules) -> None:
        self.root = root
        self.rules = rules
        self.cassettes: dict[str, Cassette] = {}
        self._entries: dict[str, tuple[Entry, ...]] = {}
        #: (fields, key) -> matching entries, ordered by cassette name, then file order.
        self._index: dict[tuple[Fields, str], list[Entry]] = {}
        #: (fields, key) -> the hit a request gets, made once (the first cassette's entries).
        self._hits: dict[tuple[Fields, str], Hit] = {}
        self._by_cassette: dict[tuple[str, Fields, str], list[Entry]] = {}
        #: The field selections in use, with how many entries use each; the whole
        #: request (None) always comes first.
        self._projections: dict[Fields, int] = {None: 0}
        for cassette in sorted(cassettes, key=lambda c: c.name):
            self._insert(cassette)

    def _insert(self, cassette: Cassette) -> None:
        entries = []
        for i, interaction in enumerate(cassette.interactions):
            r = interaction.request
            shape = self.rules.shape(r.method, r.path, r.query, r.headers, r.body)
            entry = Entry(cassette, i, interaction, shape.project(r.match), r.match)
            entries.append(entry)
            bucket = self._index.setdefault((r.match, entry.shape.key), [])
            bucket.insert(bisect.bisect_right(bucket, cassette.name, key=_name), entry)
            self._hits[(r.match, entry.shape.key)] = _hit(bucket, entry.shape.key)
            self._by_cassette.setdefault((cassette.name, r.match, entry.shape.key), []).append(
                entry
            )
            self._projections[r.match] = self._projections.get(r.match, 0) + 1
        self.cassettes[cassette.name] = cassette
        self._entries[cassette.name] = tuple(entries)

    def _remove(self, name: str) -> None:
        for entry in self._entries.pop(name, ()):
            key = (entry.fields, entry.shape.key)
            bucket = self._index[key]
            bucket.remove(entry)
            if bucket:
                self._hits[key] = _hit(bucket, entry.shape.key)
            else:
                del self._index[key]
                del self._hits[key]
            self._by_cassette.pop((name, entry.fields, entry.shape.key), None)
            left = self._projections[entry.fields] - 1
            if left or entry.fields is None:
                self._projections[entry.fields] = left
            else:
                del self._projections[entry.fields]
        self.cassettes.pop(name, None)

    def add(self, cassette: Cassette) -> None:
        """Add a cassette (or replace the one of the same name), e.g. just recorded.

        Only this cassette's interactions are indexed again, so adding to a large library
        costs what adding to a small one does.
        """
        self._remove(cassette.name)
        self._insert(cassette)

    def entries(self, name: str) -> tuple[Entry, ...]:
        """The indexed interactions of cassette ``name`` (none if it is not loaded)."""
        return self._entries.get(name, ())

    @classmethod
    def load(cls, root: Path, rules: MatchRules | None = None) -> CassetteLibrary:
        """Load every ``*.yaml``/``*.yml`` under ``root``; raise :class:`LibraryError`."""
        rules = rules or MatchRules()
        if not root.is_dir():
            raise LibraryError(
                [
                    CassetteError(
                        str(root),
                        0,
                        "not a directory (expected the "
                        "cassette directory, e.g. --cassettes ./cassettes)",
                    )
                ]
            )
        real_root = root.resolve()
        cassettes: list[Cassette] = []
        errors: list[CassetteError] = []
        seen: dict[str, str] = {}
        for path in cassette_files(root):
            display = str(path)
            if not path.resolve().is_relative_to(real_root):
                errors.append(
                    CassetteError(
                        display,
                        0,
                        "is a link to a file outside the "
                        "cassette directory; copy the file in instead",
                    )
                )
                continue
            name = path.relative_to(root).with_suffix("").as_posix()
            if name in seen:
                errors.append(
                    CassetteError(
                        display,
                        0,
                        f"cassette name {name!r} is also used by {seen[name]}; rename one of them",
                    )
                )
                continue
            seen[name] = display
            try:
                cassettes.append(load_cassette(path, name, display))
            except CassetteError as exc:
                errors.append(exc)
        if errors:
            raise LibraryError(errors)
        return cls(root, cassettes, rules)

    def __len__(self) -> int:
        return len(self.cassettes)

    def safe_name(self, raw: str) -> str:
        """A client-supplied cassette name, normalized (no suffix), checked to stay inside.

        Raise :class:`UnsafeNameError` for a name that is absolute, climbs out with ``..``
        or reaches a file outside the directory through a link, whether or not it exists.
        """
        if not raw or "\x00" in raw or "\\" in raw:
            raise UnsafeNameError("expected a relative name such as 'streaming/hello'")
        pure = PurePosixPath(raw)
        if pure.is_absolute() or (len(raw) > 1 and raw[1] == ":"):
            raise UnsafeNameError(
                "absolute paths are not allowed; use a name relative to the cassette directory"
            )
        if ".." in pure.parts or pure.name in ("", "."):
            raise UnsafeNameError("'..' is not allowed in a cassette name")
        name = pure.with_suffix("").as_posix() if pure.suffix in SUFFIXES else pure.as_posix()
        if name in self.cassettes:
            return name
        # Only links are followed here (no file is opened): a name that leads outside is
        # refused even when nothing is there, so a client learns nothing about the outside.
        real_root = self.root.resolve()
        for suffix in ("", *SUFFIXES):
            if not (self.root / (name + suffix)).resolve().is_relative_to(real_root):
                raise UnsafeNameError("the name resolves outside the cassette directory")
        return name

    def find(self, shape: RequestShape, cassette: str | None = None) -> Hit | None:
        """The interactions matching ``shape`` (in ``cassette`` only, if given), or ``None``
        (then :meth:`closest` explains why).

        Interactions that match on the whole request win over those that declare fewer
        fields (``match:``); among cassettes, the first by name.
        """
        if cassette is None:
            hit = self._hits.get((None, shape.key))
            if hit is not None:
                return hit
        for fields in self._projections:
            key = shape.project(fields).key
            if cassette is None:
                hit = self._hits.get((fields, key))
                if hit is not None:
                    return hit
            else:
                entries = self._by_cassette.get((cassette, fields, key))
                if entries:
                    return Hit(entries[0].cassette, tuple(entries), key)
        return None

    def closest(self, shape: RequestShape, cassette: str | None = None) -> Closest:
        """Why nothing matches ``shape``: the closest interaction and the first difference.

        This compares the request with every interaction (in ``cassette``, if given): it is
        for the message of a miss, not for every request.
        """
        names = [cassette] if cassette is not None else sorted(self._entries)
        candidates = [e for name in names for e in self._entries.get(name, ())]
        scope = f"cassette {cassette!r}" if cassette else "the cassette directory"
        if not candidates:
            return Closest(f"{scope} holds no interactions", f"{scope} holds no interactions")
        best: tuple[int, Entry, Difference | None] | None = None
        for entry in candidates:
            found = compare(shape.project(entry.fields), entry.shape)
            first = next(found, None)
            count = 1 + sum(1 for _ in zip(found, range(200), strict=False))
            if entry.shape.path != shape.path or entry.shape.method != shape.method:
                count += 1000
            if best is None or count < best[0]:
                best = (count, entry, first)
        assert best is not None
        _, entry, first = best
        where = (
            f"closest is {entry.cassette.name} (interaction {entry.index}, "
            f"{entry.cassette.path}:{entry.interaction.line})"
        )
        found = compare(shape.project(entry.fields), entry.shape)
        listed = tuple(d for d, _ in zip(found, range(DIFFERENCES_KEPT), strict=False))
        if first is None:
            return Closest(where, where, entry, listed)
        return Closest(f"{where}: {first.shown()}", f"{where}: {first.logged()}", entry, listed)


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


def cassette_files(root: Path) -> list[Path]:
    """Every cassette file under ``root``, sorted; dot-files and dot-folders are skipped."""
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files.extend(
            Path(folder) / n for n in names if not n.startswith(".") and n.endswith(SUFFIXES)
        )
    return sorted(files)
