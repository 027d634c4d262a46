"""One API request, parsed once into the value the handler passes along.

Request headers that steer tapedeck:

- ``x-tapedeck-cassette: NAME`` — answer from this cassette only (record into it);
- ``x-tapedeck-test-cassette: NAME`` — this test's own cassette: look here first, then in
  the whole library; record into it (the pytest plugin sends it for every test);
- ``x-tapedeck-test-id: ID`` — keep sequence positions and fault counters for this test;
- ``x-tapedeck-timing: SPEC`` — pace this response differently (see
  :mod:`tapedeck.shaping.timing`);
- ``x-tapedeck-fault: SPEC`` — break this response (see :mod:`tapedeck.shaping.faults`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

from ..cassette.library import CassetteLibrary
from ..cassette.matching import RequestShape
from ..cassette.model import Blob
from ..cassette.threads import rebuilt
from ..errors import APIError, FaultSpecError, SpecError, UnsafeNameError
from ..record.recorder import KEPT_REQUEST_HEADERS, MAX_FILE_SIZE, headers_kept
from ..record.redact import DEFAULT, Redactor
from ..shaping.faults import Fault, over_limit, parse_faults
from ..shaping.timing import Timing
from ..source.conversations import Conversations
from ..validation import Broken, Validate, check
from ..wire.multipart import is_multipart
from .incoming import Incoming
from .request_body import POST_ONLY, parse_body, read_form

#: Bytes of request bodies (and what they parse into) the shape cache may hold.
SHAPE_CACHE_BYTES = 4 * 1024 * 1024
#: A body larger than this is parsed afresh every time rather than cached.
SHAPE_CACHE_LARGEST = 256 * 1024
#: What a kept request costs besides its body: the key, the parsed request and its shape
#: (measured with tracemalloc: about 2 kB for a small Messages request).
ENTRY_BYTES = 2048


@dataclass(frozen=True, slots=True)
class Request:
    """What an API request asks, read, parsed and checked; the same bytes always ask the
    same, so one value serves every request with those bytes."""

    method: str
    path: str
    #: The parsed JSON body (``None`` for none), with key-shaped strings redacted.
    body: object
    shape: RequestShape
    #: The body asks for an event stream (``"stream": true``).
    stream: bool
    test_id: str
    #: The timing its ``x-tapedeck-timing`` header asks for (``None``: the server's).
    timing: Timing | None
    #: The faults its own ``x-tapedeck-fault`` header asks for; ``None``: the fault book's.
    faults: tuple[Fault, ...] | None
    #: The cassette ``x-tapedeck-cassette`` names (checked to stay inside), if any.
    cassette: str | None
    #: The test's own cassette (``x-tapedeck-test-cassette``), if any.
    test_cassette: str | None = None
    #: The query, and the headers a recording keeps, redacted as a recording holds them.
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    #: The body's size in bytes.
    size: int = 0
    #: The rules of the API it breaks (:mod:`tapedeck.validation`), if checked.
    broken: tuple[Broken, ...] = ()
    #: The files of a ``multipart/form-data`` body (``body`` describes the form), secrets
    #: out, for a recording to keep beside its cassette (:mod:`tapedeck.cassette.blobs`).
    uploads: tuple[Blob, ...] = ()
    #: :meth:`without_body`, once made: one value serves every request with these bytes,
    #: and the journal leaves the body out of each of them when it is full.
    _bare: Request | None = field(default=None, init=False, repr=False, compare=False)

    def without_body(self) -> Request:
        """The same request with its body left out (the journal's ``journal_body_limit``),
        and its shape too: that holds the body again, and its key a copy of it as text."""
        bare = self._bare
        if bare is None:
            bare = replace(
                self,
                body=None,
                uploads=(),
                shape=RequestShape(self.method, self.path, self.query, (), None),
            )
            object.__setattr__(bare, "_bare", bare)
            object.__setattr__(self, "_bare", bare)
        return bare


class RequestReader:
    """Turns an :class:`Incoming` request into a :class:`Request`, or raises
    :class:`~tapedeck.errors.APIError` for one tapedeck cannot take.

    Test suites send the same few requests over and over; parsing and normalizing each
    body again would be most of the cost of a replayed response, so requests are kept by
    their bytes (method, path, query, body, the matched and tapedeck headers). The cache
    holds at most ``budget`` bytes' worth (a body and its parsed form count four times
    its size, plus :data:`ENTRY_BYTES`); the oldest go first, and bodies over ``largest``
    bytes are never kept.
    """

    def __init__(
        self,
        library: CassetteLibrary,
        cassettes_must_exist: bool,
        max_delay: float = math.inf,
        budget: int = SHAPE_CACHE_BYTES,
        largest: int = SHAPE_CACHE_LARGEST,
        redactor: Redactor = DEFAULT,
        kept_headers: frozenset[str] = frozenset(KEPT_REQUEST_HEADERS),
        validate: Validate = Validate.OFF,
        max_file_size: int = MAX_FILE_SIZE,
    ) -> None:
        self.library = library
        #: The largest file an upload may hold (the setting max_file_size).
        self.max_file_size = max_file_size
        self.redactor = redactor
        #: The request headers a recording keeps (see :func:`headers_kept`).
        self.kept_headers = kept_headers
        self.validate = validate
        self.conversations = Conversations(library)
        self.cassettes_must_exist = cassettes_must_exist
        #: The longest wait a timing or fault header may ask for (the setting max_delay).
        self.max_delay = max_delay
        self.budget = budget
        self.largest = largest
        #: Bytes the kept requests count for.
        self.size = 0
        # anthropic-version and anthropic-beta: which rules validation applies.
        keyed = set(library.rules.headers) | kept_headers | {"anthropic-version", "anthropic-beta"}
        self._keyed = (
            *(h.encode("latin-1") for h in sorted(keyed)),
            b"x-tapedeck-cassette",
            b"x-tapedeck-timing",
            b"x-tapedeck-fault",
            b"x-tapedeck-test-id",
            b"x-tapedeck-test-cassette",
        )
        self._seen: dict[tuple[object, ...], tuple[Request, int]] = {}

    def read(self, incoming: Incoming) -> Request:
        """The request ``incoming`` makes; raise :class:`APIError` for a bad one."""
        raw = incoming.raw
        # What a request matches can change when a recording adds the reply a thread
        # continues from, or a thinking block it carries: the library's version is part of it.
        key = (
            self.library.version,
            incoming.method,
            incoming.path,
            incoming.query_string,
            incoming.body,
            *map(raw.get, self._keyed),
        )
        found = self._seen.get(key)
        if found is not None:
            return found[0]
        request = self._parse(incoming)
        body = incoming.body
        if len(body) <= self.largest:
            self._keep(key, request, 4 * (len(body) + len(incoming.query_string)) + ENTRY_BYTES)
        return request

    def _keep(self, key: tuple[object, ...], request: Request, cost: int) -> None:
        self.size += cost
        self._seen[key] = (request, cost)
        while self.size > self.budget:
            oldest = next(iter(self._seen))
            self.size -= self._seen.pop(oldest)[1]

    def _parse(self, incoming: Incoming) -> Request:
        path, method = incoming.path, incoming.method
        if path in POST_ONLY and method != "POST":
            raise APIError(
                405,
                f"tapedeck: {method} is not allowed on {path}; use POST",
                headers={"allow": "POST"},
            )
        header = incoming.header
        named, paced, broken, own = (
            header(b"x-tapedeck-cassette"),
            header(b"x-tapedeck-timing"),
            header(b"x-tapedeck-fault"),
            header(b"x-tapedeck-test-cassette"),
        )
        cassette = None if named is None else self._cassette(named, "x-tapedeck-cassette")
        test_cassette = None if own is None else self._cassette(own, "x-tapedeck-test-cassette")
        timing = None if paced is None else self._timing(paced)
        # Recordings hold a placeholder where a secret was: match what they hold. The
        # body is decoded first, so an escaped or percent-encoded key is found too.
        redact = self.redactor
        uploads: tuple[Blob, ...] = ()
        kind = header(b"content-type")
        if is_multipart(kind) and method == "POST":
            body, uploads = read_form(incoming.body, kind or "", self.max_file_size, self.redactor)
            body = redact.value(body)
        else:
            body = redact.value(parse_body(incoming.body, path))
        query = [(k, redact.text(v)) for k, v in incoming.query_items()]
        path = redact.text(path)
        items = incoming.header_items
        asked = rebuilt(body, self.library.conversation)
        shape = self.library.rules.shape(method, path, query, items, asked)
        stream = isinstance(body, dict) and body.get("stream") is True
        rules_broken: tuple[Broken, ...] = ()
        if self.validate is not Validate.OFF and path == "/v1/messages":
            rules_broken = check(
                body,
                header(b"anthropic-beta"),
                self.conversations,
                header(b"anthropic-version"),
            )
        return Request(
            method,
            path,
            body,
            shape,
            stream,
            header(b"x-tapedeck-test-id") or "",
            timing,
            None if broken is None else self._faults(broken, stream),
            cassette,
            test_cassette,
            tuple(query),
            headers_kept(items, self.kept_headers, redact),
            len(incoming.body),
            rules_broken,
            uploads,
        )

    def _cassette(self, raw: str, header: str) -> str:
        """A cassette name from ``header``, checked to stay inside the cassette directory;
        one that ``x-tapedeck-cassette`` names must exist when nothing is recorded."""
        library = self.library
        shown = self.redactor.text(raw)
        try:
            name = library.safe_name(self.redactor.text(raw.strip()))
        except UnsafeNameError as exc:
            raise APIError(400, f"tapedeck: {header} {shown!r} refused: {exc}") from None
        strict = header == "x-tapedeck-cassette" and self.cassettes_must_exist
        if strict and name not in library.cassettes:
            raise APIError(404, f"tapedeck: {header} {shown!r}: no such cassette in {library.root}")
        return name

    def _timing(self, spec: str) -> Timing:
        try:
            timing = _timing(spec)
        except SpecError as exc:
            raise APIError(400, f"tapedeck: x-tapedeck-timing: {exc}") from None
        problem = timing.over_limit(self.max_delay)
        if problem:
            raise APIError(400, f"tapedeck: x-tapedeck-timing: {problem}")
        return timing

    def _faults(self, text: str, stream: bool) -> tuple[Fault, ...]:
        try:
            faults = _faults(text)
        except FaultSpecError as exc:
            raise APIError(400, f"tapedeck: x-tapedeck-fault: {exc}") from None
        problem = over_limit(faults, self.max_delay)
        if problem:
            raise APIError(400, f"tapedeck: x-tapedeck-fault: {problem}")
        misplaced = [f.text for f in faults if f.streams_only and not stream]
        if misplaced:
            raise APIError(
                400,
                f"tapedeck: x-tapedeck-fault: {', '.join(misplaced)} only applies to streaming "
                'requests ("stream": true); a non-streaming request takes status, latency and '
                "quota",
            )
        return faults


@functools.lru_cache(maxsize=256)
def _timing(spec: str) -> Timing:
    return Timing.parse(spec)


@functools.lru_cache(maxsize=256)
def _faults(spec: str) -> tuple[Fault, ...]:
    return parse_faults(spec)
