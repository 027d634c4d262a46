"""The cassette data model: plain, immutable records of recorded exchanges.

A *cassette* is one YAML file holding one or more *interactions*; an interaction is a
request and the response that answered it. Loading and validation live in
:mod:`tapedeck.cassette.load`, writing in :mod:`tapedeck.cassette.save`; this module only
holds the data. How a response looks on the wire is the cassette source's business
(:mod:`tapedeck.source.cassette`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .normalize import Normalize

#: The cassette format version this tapedeck reads and writes.
FORMAT_VERSION = 1

JSONValue = Any


class StreamEnd(enum.StrEnum):
    """How a recorded event stream ended."""

    #: The server finished the response normally after the last event.
    COMPLETE = "complete"
    #: The connection dropped after the last event, without finishing the body.
    DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One Server-Sent Event: its name, its data and when it arrived.

    ``data`` is the parsed JSON value, or a ``str`` for data that is not JSON.
    ``at_ms`` counts from the moment the response headers arrived.
    """

    event: str
    data: JSONValue
    at_ms: float


@dataclass(frozen=True, slots=True)
class Client:
    """The program that sent a request: its ``name`` (``claude-cli``, ``anthropic-python``,
    ``ai-sdk/anthropic``, ``litellm``, ...) and ``release`` (``2.1.337``), if it said."""

    name: str
    release: str | None = None

    def __str__(self) -> str:
        return self.name if self.release is None else f"{self.name} {self.release}"


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes kept beside a cassette rather than in it (an uploaded file, a binary download):
    the file ``<cassette name>.files/<sha256>`` in the cassette directory (:mod:`.blobs`).

    ``data`` holds the bytes of a fresh recording, until the recorder has written them; a
    loaded cassette's blobs leave it ``None`` (:func:`.blobs.read_blob` reads them).
    """

    sha256: str
    size: int
    data: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """The parts of a request that identify it, and the client that sent it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: JSONValue = None
    #: When set, only these top-level body fields (with method and path) identify the
    #: request: a hand-written cassette matches the conversation, whatever the model.
    match: tuple[str, ...] | None = None
    #: Who sent it (:mod:`.clients`), when a recording could tell; never part of matching.
    client: Client | None = None
    #: The files a ``multipart/form-data`` request uploaded (``body`` describes the form:
    #: :func:`.blobs.form_body`); their bytes are kept beside the cassette.
    uploads: tuple[Blob, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """A recorded response: a JSON body, a raw text body, bytes kept beside the cassette
    (``binary``), or an SSE event stream."""

    status: int
    headers: tuple[tuple[str, str], ...]
    time_to_headers_ms: float = 0.0
    body: JSONValue = None
    text: str | None = None
    #: The events, in order: a tuple, or read from the file on first use
    #: (:class:`tapedeck.cassette.lazy_events.LazyEvents`) in a library loaded for serving.
    events: Sequence[RecordedEvent] | None = None
    end: StreamEnd = StreamEnd.COMPLETE
    end_at_ms: float | None = None
    binary: Blob | None = None

    @property
    def is_stream(self) -> bool:
        return self.events is not None


@dataclass(frozen=True, slots=True)
class Interaction:
    """A request and the response that answered it; ``line`` is where it starts in its file.

    ``recorded_at`` is when tapedeck recorded it (ISO 8601, UTC), if it did.
    """

    request: RecordedRequest
    response: RecordedResponse
    line: int = 0
    recorded_at: str | None = None


@dataclass(frozen=True, slots=True)
class Cassette:
    """A loaded cassette file. ``name`` is its path inside the cassette directory, no suffix."""

    name: str
    path: str
    interactions: tuple[Interaction, ...]
    description: str = ""
    #: Rewrites applied before matching its interactions (:mod:`.normalize`).
    normalize: tuple[Normalize, ...] = ()
    #: The size in bytes of the YAML it was loaded from.
    size: int = 0
