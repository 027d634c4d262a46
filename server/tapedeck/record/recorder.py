"""Turning proxied exchanges into cassette files.

The first recording of a name in a server run replaces the file; later ones in the same
run append to it, so a retried request (a 529, then a 200) becomes a sequence that replays
the same way. Each write is atomic, and the library learns the new cassette before the
client has the end of the response, so the next request can replay it.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

from ..cassette.library import CassetteLibrary
from ..cassette.load import parse_cassette
from ..cassette.model import Interaction, RecordedRequest, RecordedResponse
from ..cassette.save import dump_cassette, write_atomic
from .redact import redact_headers, redact_text, redact_value

log = logging.getLogger("tapedeck")
#: Request headers worth keeping in a recording (besides the matched ones).
KEPT_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")


class Recorder:
    """Writes recordings under the cassette directory and adds them to the library."""

    def __init__(
        self,
        library: CassetteLibrary,
        upstream: str,
        match_headers: tuple[str, ...],
        secret_headers: frozenset[str],
    ) -> None:
        self.library = library
        self.upstream = upstream
        self.kept_headers = frozenset(KEPT_REQUEST_HEADERS) | frozenset(match_headers)
        self.secret_headers = secret_headers
        self._session: dict[str, list[Interaction]] = defaultdict(list)
        self._locks: dict[str, anyio.Lock] = defaultdict(anyio.Lock)

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: list[tuple[str, str]],
        body: Any,
    ) -> RecordedRequest:
        """The request as a recording keeps it: the headers that matter, no secrets."""
        kept = [(k.lower(), v) for k, v in headers if k.lower() in self.kept_headers]
        return RecordedRequest(
            method=method,
            path=path,
            query=tuple((k, redact_text(v)) for k, v in query),
            headers=redact_headers(kept, self.secret_headers),
            body=redact_value(body),
        )

    async def save(self, name: str, request: RecordedRequest, response: RecordedResponse) -> None:
        """Record one exchange under ``name`` (a safe, relative cassette name)."""
        async with self._locks[name]:
            interactions = self._session[name]
            interactions.append(Interaction(request, response))
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
            text = dump_cassette(
                interactions,
                description=f"Recorded by tapedeck from {self.upstream} on {stamp}.",
            )
            path = self.library.root / f"{name}.yaml"
            await anyio.to_thread.run_sync(write_atomic, path, text)
            self.library.add(parse_cassette(text, str(path), name))
        log.info(
            "recorded %s (%d interaction%s)",
            Path(name).as_posix(),
            len(interactions),
            "" if len(interactions) == 1 else "s",
        )
