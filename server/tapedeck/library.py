"""The cassette library: every cassette under one directory, loaded and indexed at startup.

All files are read and checked when the library loads, so a broken cassette stops the
server before it answers anything, and no request ever makes tapedeck read a file:
explicit selection by name only looks names up in what was loaded.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .cassette import Cassette, Interaction, RecordedResponse
from .cassette_load import CassetteError, load_cassette
from .conversion import as_json, as_stream, convertible
from .matching import MatchRules, RequestShape, differences
from .responses import wire_headers

SUFFIXES = (".yaml", ".yml")
Fields = tuple[str, ...] | None
WireHeaders = list[tuple[bytes, bytes]]


def cassette_headers(name: str) -> list[tuple[str, str]]:
    """The headers tapedeck adds to a response replayed from cassette ``name``."""
    return [("x-tapedeck-cassette", name), ("x-tapedeck-source", "cassette")]


class LibraryError(Exception):
    """One or more cassettes could not be loaded; ``errors`` holds each problem."""

    def __init__(self, errors: list[CassetteError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UnsafeNameError(ValueError):
    """A cassette name that would reach outside the cassette directory."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One interaction, ready to serve: its cassette, its request shape and wire headers."""

    cassette: Cassette
    index: int
    interaction: Interaction
    shape: RequestShape
    headers: WireHeaders
    #: The body fields it matches on (``match:``), or ``None`` for the whole request.
    fields: Fields = None


@dataclass(frozen=True, slots=True)
class Hit:
    """The interactions of one cassette that match a request, in file order."""

    cassette: Cassette
    entries: tuple[Entry, ...]
    key: str


@dataclass(frozen=True, slots=True)
class Miss:
    """No interaction matches; ``detail`` names the closest one and the first difference."""

    detail: str


class CassetteLibrary:
    """The loaded cassettes of one directory, indexed by request shape."""

    def __init__(self, root: Path, cassettes: list[Cassette], rules: MatchRules) -> None:
        self.root = root
        self.rules = rules
        self.cassettes = {c.name: c for c in cassettes}
        self._index_all()

    def _index_all(self) -> None:
        self.cassettes = dict(sorted(self.cassettes.items()))
        self._entries: list[Entry] = []
        self._index: dict[tuple[Fields, str], list[Entry]] = defaultdict(list)
        self._by_cassette: dict[tuple[str, Fields, str], list[Entry]] = defaultdict(list)
        #: The distinct field selections in use: the whole request (None) first.
        self._projections: list[Fields] = [None]
        self._shapes: dict[tuple[str, int, bool], tuple[RecordedResponse, WireHeaders]] = {}
        for cassette in self.cassettes.values():
            extra = cassette_headers(cassette.name)
            for i, interaction in enumerate(cassette.interactions):
                r = interaction.request
                fields = r.match
                shape = self.rules.shape(r.method, r.path, r.query, r.headers, r.body)
                shape = shape.project(fields)
                headers = wire_headers(interaction.response, extra)
                entry = Entry(cassette, i, interaction, shape, headers, fields)
                self._entries.append(entry)
                self._index[(fields, shape.key)].append(entry)
                self._by_cassette[(cassette.name, fields, shape.key)].append(entry)
                if fields not in self._projections:
                    self._projections.append(fields)

    def in_shape(self, entry: Entry, wants_stream: bool) -> tuple[RecordedResponse, WireHeaders]:
        """The entry's response and wire headers as a stream or as JSON, as asked.

        A recording in the other shape is converted (see :mod:`tapedeck.conversion`) on
        first use and kept, so each conversion happens once per interaction.
        """
        response = entry.interaction.response
        if not convertible(response, wants_stream):
            return response, entry.headers
        key = (entry.cassette.name, entry.index, wants_stream)
        found = self._shapes.get(key)
        if found is None:
            other = as_stream(response) if wants_stream else as_json(response)
            found = self._shapes[key] = (
                other,
                wire_headers(other, cassette_headers(entry.cassette.name)),
            )
        return found

    def add(self, cassette: Cassette) -> None:
        """Add a cassette (or replace the one of the same name), e.g. just recorded."""
        self.cassettes[cassette.name] = cassette
        self._index_all()

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

    def resolve_name(self, raw: str) -> str | None:
        """The loaded cassette a client-supplied name refers to, or ``None`` if none.

        Raise :class:`UnsafeNameError` as :meth:`safe_name` does.
        """
        name = self.safe_name(raw)
        return name if name in self.cassettes else None

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

    def find(self, shape: RequestShape, cassette: str | None = None) -> Hit | Miss:
        """The interactions matching ``shape`` (in ``cassette`` only, if given).

        Interactions that match on the whole request win over those that declare fewer
        fields (``match:``); among cassettes, the first by name.
        """
        for fields in self._projections:
            key = shape.project(fields).key
            if cassette is not None:
                entries = self._by_cassette.get((cassette, fields, key))
            else:
                entries = self._index.get((fields, key))
                if entries and entries[0].cassette.name != entries[-1].cassette.name:
                    first = entries[0].cassette.name
                    entries = [e for e in entries if e.cassette.name == first]
            if entries:
                return Hit(entries[0].cassette, tuple(entries), key)
        return self._miss(shape, cassette)

    def _miss(self, shape: RequestShape, cassette: str | None) -> Miss:
        candidates = [e for e in self._entries if cassette is None or e.cassette.name == cassette]
        scope = f"cassette {cassette!r}" if cassette else "the cassette directory"
        if not candidates:
            return Miss(f"{scope} holds no interactions")
        best: tuple[int, Entry, str] | None = None
        for entry in candidates:
            found = differences(shape.project(entry.fields), entry.shape)
            first = next(found, "")
            count = 1 + sum(1 for _ in zip(found, range(200), strict=False))
            if entry.shape.path != shape.path or entry.shape.method != shape.method:
                count += 1000
            if best is None or count < best[0]:
                best = (count, entry, first)
        assert best is not None
        _, entry, first = best
        where = (
            f"{entry.cassette.name} (interaction {entry.index}, {entry.cassette.path}:"
            f"{entry.interaction.line})"
        )
        return Miss(f"closest is {where}: {first}")


def cassette_files(root: Path) -> list[Path]:
    """Every cassette file under ``root``, sorted; dot-files and dot-folders are skipped."""
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files.extend(
            Path(folder) / n for n in names if not n.startswith(".") and n.endswith(SUFFIXES)
        )
    return sorted(files)
