"""Turning proxied exchanges into cassette files.

Names are deterministic: the same request always maps to the same file, e.g.
``messages/claude-sonnet-4-5-what-is-the-weather-1a2b3c4d.yaml``, unless the request
names its cassette with ``x-tapedeck-cassette``. The first recording of a name in a server
run replaces the file; later ones in the same run append to it, so a retried request
(a 529, then a 200) becomes a sequence that replays the same way.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

from .cassette import Interaction, RecordedRequest, RecordedResponse
from .cassette_load import parse_cassette
from .cassette_save import dump_cassette, write_atomic
from .library import CassetteLibrary
from .logs import log
from .matching import RequestShape
from .redact import redact_headers, redact_text, redact_value

_WORD = re.compile(r"[a-z0-9]+")
#: Request headers worth keeping in a recording (besides the matched ones).
KEPT_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")


def _slug(text: str, words: int = 6, limit: int = 48) -> str:
    return "-".join(_WORD.findall(text.lower())[:words])[:limit].strip("-")


def _last_user_text(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict)]
            return " ".join(t for t in texts if isinstance(t, str))
    return ""


def cassette_name(shape: RequestShape) -> str:
    """The deterministic cassette name for a request."""
    digest = hashlib.sha256(shape.key.encode()).hexdigest()[:8]
    folder = _slug(shape.path.removeprefix("/v1/").replace("/", " "), words=4) or "root"
    body = shape.body if isinstance(shape.body, dict) else {}
    model = body.get("model")
    parts = [_slug(model) if isinstance(model, str) else shape.method.lower()]
    parts.append(_slug(_last_user_text(body)))
    return f"{folder}/{'-'.join(p for p in parts if p)}-{digest}"


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
