"""The library index: what a serving tapedeck keeps of each cassette, and a cache of it.

Each cassette is read and checked once, but for the middle of its streams (:mod:`.skeleton`:
they are checked on first use); what the server keeps is its index entry —
requests, response heads, and for each stream its event count and first and last events (the events
stay in the file, :mod:`.lazy_events`). The entries are also written to a cache file, keyed
by each cassette's size and modification time, in a directory of the user's (the
``index_cache`` setting; by default ``$XDG_CACHE_HOME/tapedeck`` or ``~/.cache/tapedeck``,
never inside the cassette directory). The next start reads the cache and parses only the
files that changed. Deleting the cache directory is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import CassetteError
from ..version import __version__
from .blobs import uploads_in
from .lazy_events import EventStore, LazyEvents, Stamp, stamp_of
from .load import parse_cassette, read_text
from .model import (
    Blob,
    Cassette,
    Client,
    Interaction,
    RecordedEvent,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
)
from .normalize import Normalize
from .skeleton import parse_start

log = logging.getLogger("tapedeck")

#: Bumped whenever an entry's layout, or what loading a file checks, changes: an older
#: cache is then ignored (its entries vouch for files checked by the older rules; 3: the
#: event order an SDK can assemble; 4: a stream's middle events checked on first use).
FORMAT = 4
#: Files to parse per worker process before it pays to start one (starting a process and
#: importing tapedeck costs about as much CPU as reading the request sections of a couple of
#: thousand cassettes, :mod:`.skeleton`).
PARALLEL_FROM = 2000


def _parse_file(job: tuple[str, str, str]) -> Any:
    """A worker's job: the index entry of one file, or the :class:`CassetteError` it has."""
    file, name, display = job
    path = Path(file)
    try:
        stamp = stamp_of(path)
        text = read_text(path, display)
        started = parse_start(text, display, name)
        if started is not None:
            cassette, counts = started
            # A reply that thinks needs its signatures now (validation compares them):
            # only the whole stream has them.
            if not any(_thinks(cassette.interactions[i].request) for i in counts):
                return _entry(cassette, stamp, counts)
        return _entry(parse_cassette(text, display, name, order=True), stamp)
    except CassetteError as exc:
        return exc
    except OSError as exc:
        return CassetteError(display, 0, f"cannot read: {exc.strerror}")


def _cores() -> int:
    """The CPUs this process may run on (``taskset`` or a container may allow fewer than
    the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/tapedeck``, else ``~/.cache/tapedeck``."""
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tapedeck"


class LibraryIndex:
    """Index entries for one cassette directory, from the cache file where still valid."""

    def __init__(self, root: Path, cache_dir: Path | None, store: EventStore) -> None:
        self.root = root
        self._prefix = len(str(root)) + 1
        self.store = store
        self.cache_file = None if cache_dir is None else cache_dir / _cache_name(root)
        self._read_cache: dict[str, Any] | None = None
        self._entries: dict[str, Any] = {}
        self._parsed: dict[Path, Any] = {}
        self._prepared: set[Path] = set()
        #: The files :meth:`prepare` found valid entries for (one ``stat`` each is enough).
        self._checked: dict[Path, tuple[str, Any]] = {}
        #: How many cassettes were parsed (not found in the cache) by this load.
        self.parsed = 0

    @property
    def _cached(self) -> dict[str, Any]:
        """The cache file's entries, read when first needed (``load: lazy`` may never)."""
        if self._read_cache is None:
            self._read_cache = self._read()
        return self._read_cache

    def uncached(self) -> LibraryIndex:
        """An index of the same directory and event store that neither reads nor writes the
        cache (for loading a few files on demand)."""
        return LibraryIndex(self.root, None, self.store)

    def prepare(self, files: Sequence[tuple[Path, str, str]]) -> None:
        """Parse, ahead of :meth:`cassette`, the files the cache has no valid entry for: in
        worker processes when there are many (:data:`PARALLEL_FROM`) and cores to spare."""
        missing = []
        for f in files:
            key, entry = self._valid(*f)
            if entry is None:
                missing.append(f)
            else:
                self._checked[f[0]] = key, entry
        workers = min(_cores(), len(missing) // PARALLEL_FROM)
        if workers < 2:
            return
        context = multiprocessing.get_context("spawn")
        chunk = max(1, len(missing) // (workers * 8))
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [(str(p), n, d) for p, n, d in missing]
            for (path, _, _), result in zip(
                missing, pool.map(_parse_file, jobs, chunksize=chunk), strict=True
            ):
                self._parsed[path] = result
                self._prepared.add(path)
        self.parsed += len(missing)

    def cassette(self, path: Path, name: str, display: str) -> Cassette:
        """The cassette at ``path``, lazy; parsed only when the cache has no valid entry."""
        checked = self._checked.pop(path, None)
        key, entry = checked if checked is not None else self._valid(path, name, display)
        if entry is None:
            result = self._parsed.pop(path, None) or _parse_file((str(path), name, display))
            if isinstance(result, CassetteError):
                raise result
            entry = result
            if path not in self._prepared:
                self.parsed += 1
        self._entries[key] = entry
        return _cassette(entry, display, str(path), self.store)

    def _valid(self, path: Path, name: str, display: str) -> tuple[str, Any]:
        """The file's key, and its cached entry if the file has not changed since."""
        key = str(path)[self._prefix :].replace(os.sep, "/")
        entry = self._cached.get(key)
        if entry is None or entry["name"] != name or tuple(entry["stamp"]) != stamp_of(path):
            return key, None
        return key, entry

    def save(self) -> None:
        """Write the entries of this load to the cache file, if they changed."""
        if self.cache_file is None or self._entries == self._cached:
            return
        document = {"format": FORMAT, "tapedeck": __version__, "files": self._entries}
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        temporary = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}.tmp")
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.cache_file)
        except OSError as exc:
            log.info("index cache not written (%s): %s", self.cache_file, exc.strerror)
            temporary.unlink(missing_ok=True)

    def _read(self) -> dict[str, Any]:
        if self.cache_file is None:
            return {}
        try:
            document = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return {}
        if document.get("tapedeck") != __version__:
            return {}
        files = document.get("files")
        return files if isinstance(files, dict) else {}


def _cache_name(root: Path) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]
    return f"index-{digest}.json"


def _signatures(events: Iterable[RecordedEvent]) -> list[list[str]]:
    """The reply's thinking blocks as ``[signature, text]`` (what validation compares)."""
    texts: dict[Any, list[str]] = {}
    found: list[list[str]] = []
    for event in events:
        data = event.data
        delta = data.get("delta") if isinstance(data, dict) else None
        if not isinstance(delta, dict) or event.event != "content_block_delta":
            continue
        if delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
            texts.setdefault(data.get("index"), []).append(delta["thinking"])
        elif delta.get("type") == "signature_delta" and isinstance(delta.get("signature"), str):
            found.append([delta["signature"], "".join(texts.get(data.get("index"), []))])
    return found


def _thinks(request: RecordedRequest) -> bool:
    """Whether the request turned thinking on (only then can its reply think)."""
    body = request.body
    thinking = body.get("thinking") if isinstance(body, dict) else None
    return isinstance(thinking, dict) and thinking.get("type") != "disabled"


def _entry(
    cassette: Cassette, stamp: Stamp, counts: Mapping[int, int] | None = None
) -> dict[str, Any]:
    """The index entry of ``cassette``; ``counts``: the event count of each interaction
    whose stream start-up read only the first and last events of (:mod:`.skeleton`)."""
    interactions = []
    for i, interaction in enumerate(cassette.interactions):
        request, response = interaction.request, interaction.response
        head: dict[str, Any] = {
            "status": response.status,
            "headers": [list(h) for h in response.headers],
            "ttfh": response.time_to_headers_ms,
        }
        if response.events is not None:
            events = response.events
            first, last = (events[0], events[-1]) if events else (None, None)
            head.update(
                count=len(events) if counts is None else counts.get(i, len(events)),
                first=None if first is None else [first.event, first.data, first.at_ms],
                last=None if last is None else [last.event, last.data, last.at_ms],
                end=response.end.value,
                end_at=response.end_at_ms,
                thinking=_signatures(events) if _thinks(request) else [],
            )
        else:
            head.update(body=response.body, text=response.text)
            if response.binary is not None:
                head["binary"] = [response.binary.sha256, response.binary.size]
        interactions.append(
            {
                "line": interaction.line,
                "at": interaction.recorded_at,
                "request": [
                    request.method,
                    request.path,
                    [list(q) for q in request.query],
                    [list(h) for h in request.headers],
                    request.body,
                    None if request.match is None else list(request.match),
                ],
                "client": None
                if request.client is None
                else [request.client.name, request.client.release],
                "response": head,
            }
        )
    return {
        "stamp": list(stamp),
        "name": cassette.name,
        "description": cassette.description,
        "normalize": [[".".join(r.path), r.pattern.pattern, r.replace] for r in cassette.normalize],
        "interactions": interactions,
    }


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in value)


def _cassette(entry: Mapping[str, Any], display: str, file: str, store: EventStore) -> Cassette:
    stamp: Stamp = (int(entry["stamp"][0]), int(entry["stamp"][1]))
    interactions = []
    for i, item in enumerate(entry["interactions"]):
        method, path, query, headers, body, match = item["request"]
        match = None if match is None else tuple(match)
        known = item.get("client")  # an older entry has none: its file could not have one
        client = None if known is None else Client(known[0], known[1])
        request = RecordedRequest(
            method, path, _pairs(query), _pairs(headers), body, match, client, uploads_in(body)
        )
        head = item["response"]
        events = None
        if "count" in head:
            first = None if head["first"] is None else RecordedEvent(*head["first"])
            last = None if head["last"] is None else RecordedEvent(*head["last"])
            thinking = tuple((s, t) for s, t in head["thinking"])
            events = LazyEvents(
                store, file, stamp, i, head["count"], (first, last), thinking, item["line"]
            )
        response = RecordedResponse(
            status=head["status"],
            headers=_pairs(head["headers"]),
            time_to_headers_ms=head["ttfh"],
            body=head.get("body"),
            text=head.get("text"),
            events=events,
            end=StreamEnd(head.get("end", "complete")),
            end_at_ms=head.get("end_at"),
            binary=None if "binary" not in head else Blob(*head["binary"]),
        )
        interactions.append(Interaction(request, response, item["line"], item["at"]))
    return Cassette(
        name=entry["name"],
        path=display,
        interactions=tuple(interactions),
        description=entry["description"],
        normalize=tuple(
            Normalize.parse({"path": p, "pattern": pattern, "replace": replace})
            for p, pattern, replace in entry["normalize"]
        ),
        size=stamp[0],  # the file's size: the bytes it was loaded from
    )
