"""Turning proxied exchanges into cassette files, without ever losing one.

- A recording **adds** its interaction to its cassette (``once``, ``new_episodes``). In
  ``all`` mode the first recording of a request in a run **replaces** the interactions
  recorded for that same request, and later ones in the run add to it (so a retried
  request becomes a sequence); other requests' interactions are never touched.
- **Only good answers become fixtures** by default: transient failures (408, 409, 429, 5xx,
  an in-stream ``error`` event, a stream the upstream cut) reach the client but are not
  written; ``record_errors`` keeps them. 401 and 403 are never written. A recording never
  replaces a good interaction with an error.
- The ``before_record_request`` / ``before_record_response`` hooks see each recording last
  and may change or drop it.
- Writes to one cassette are serialized and atomic, relative to the cassette directory
  without following links; the library learns the new cassette before the client has the
  end of the response, so the next request can replay it.
"""

from __future__ import annotations

import datetime
import enum
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from ..cassette.library import CassetteLibrary
from ..cassette.load import parse_cassette
from ..cassette.matching import MatchRules
from ..cassette.model import Interaction, RecordedRequest, RecordedResponse, StreamEnd
from ..cassette.save import dump_cassette, write_inside
from ..errors import RecordingError
from .redact import Redactor

log = logging.getLogger("tapedeck")
#: Request headers worth keeping in a recording (besides the matched ones).
KEPT_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")
#: Statuses of failures that may not happen again: kept only with ``record_errors``.
TRANSIENT = frozenset({408, 409, 429})
#: Statuses that say the upstream refused the key: never kept.
REFUSED = frozenset({401, 403})
Hook = Callable[[Any], Any]


class Verdict(enum.StrEnum):
    """What an answer is worth as a fixture."""

    GOOD = "good"
    TRANSIENT = "transient"
    REFUSED = "refused"


def verdict(response: RecordedResponse) -> Verdict:
    """Whether ``response`` is a good answer, a transient failure or a refused key."""
    if response.status in REFUSED:
        return Verdict.REFUSED
    if response.status in TRANSIENT or response.status >= 500:
        return Verdict.TRANSIENT
    events = response.events
    if events is not None:
        if response.end is StreamEnd.DISCONNECT:
            return Verdict.TRANSIENT
        last = next((e for e in reversed(events) if e.event != "ping"), None)
        if last is not None and last.event == "error":
            return Verdict.TRANSIENT
    return Verdict.GOOD


class Recorder:
    """Writes recordings under the cassette directory and adds them to the library."""

    def __init__(
        self,
        library: CassetteLibrary,
        upstream: str,
        rules: MatchRules,
        redactor: Redactor,
        *,
        replace_per_run: bool = False,
        record_errors: bool = False,
        before_request: Hook | None = None,
        before_response: Hook | None = None,
    ) -> None:
        self.library = library
        self.upstream = upstream
        self.rules = rules
        self.redactor = redactor
        self.kept_headers = frozenset(KEPT_REQUEST_HEADERS) | frozenset(rules.headers)
        self.replace_per_run = replace_per_run
        self.record_errors = record_errors
        self.before_request = before_request
        self.before_response = before_response
        #: Cassettes this run created: ``once`` keeps recording into them.
        self.created: set[str] = set()
        #: Requests (by cassette and key) already re-recorded in this run (``all``).
        self._renewed: set[tuple[str, str]] = set()
        #: Errors held back until a good answer replaces a good interaction (``all``).
        self._held: dict[tuple[str, str], list[Interaction]] = defaultdict(list)
        self._locks: dict[str, anyio.Lock] = defaultdict(anyio.Lock)
        self._told_refused = False
        #: Requests whose answers in this run were all transient failures, kept on purpose.
        self._failing: set[tuple[str, str]] = set()

    def retrying(self, name: str, key: str) -> bool:
        """Whether this run recorded only failures for this request in ``name``: then a
        retry goes upstream again rather than replaying the failure just recorded."""
        return (name, key) in self._failing

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: list[tuple[str, str]],
        body: Any,
    ) -> RecordedRequest:
        """The request as a recording keeps it: the headers that matter, no secrets."""
        redact = self.redactor
        kept = [(k.lower(), v) for k, v in headers if k.lower() in self.kept_headers]
        return RecordedRequest(
            method=method,
            path=redact.text(path),
            query=tuple((k, redact.text(v)) for k, v in query),
            headers=redact.headers(kept),
            body=redact.value(body),
        )

    def _key(self, request: RecordedRequest) -> str:
        """The request's matching key, as the library indexes it."""
        r = request
        return self.rules.shape(r.method, r.path, r.query, r.headers, r.body).project(r.match).key

    async def save(self, name: str, request: RecordedRequest, response: RecordedResponse) -> bool:
        """Record one exchange under ``name`` (a safe, relative cassette name), if it is
        worth keeping; return whether the cassette was written. Raise
        :class:`~tapedeck.errors.RecordingError` if the file cannot be written."""
        worth = verdict(response)
        if worth is Verdict.REFUSED:
            self._refused(response.status)
            return False
        if worth is Verdict.TRANSIENT and not self.record_errors:
            log.info(
                "not recorded into %s: the upstream answered %s (a transient failure; "
                "record_errors keeps them)",
                name,
                _what(response),
            )
            return False
        hooked = self._hooked(request, response)
        if hooked is None:
            log.info("not recorded into %s: a before_record hook dropped it", name)
            return False
        request, response = hooked
        stamp = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        new = Interaction(request, response, recorded_at=stamp.isoformat().replace("+00:00", "Z"))
        key = self._key(request)
        if worth is Verdict.GOOD:
            self._failing.discard((name, key))
        else:
            self._failing.add((name, key))
        async with self._locks[name]:
            interactions = self._merge(name, key, new, worth is Verdict.GOOD)
            if interactions is None:
                log.info(
                    "kept the recorded answer in %s: the upstream answered %s",
                    name,
                    _what(response),
                )
                return False
            await self._write(name, interactions)
        log.info(
            "recorded %s (%d interaction%s)",
            Path(name).as_posix(),
            len(interactions),
            "" if len(interactions) == 1 else "s",
        )
        return True

    def _hooked(
        self, request: RecordedRequest, response: RecordedResponse
    ) -> tuple[RecordedRequest, RecordedResponse] | None:
        if self.before_request is not None:
            request = self.before_request(request)
            if request is None:
                return None
        if self.before_response is not None:
            response = self.before_response(response)
            if response is None:
                return None
        # A hook may put back what redaction took out: redact what it returns, too.
        redact = self.redactor
        request = replace(request, body=redact.value(request.body), path=redact.text(request.path))
        if response.events is not None:
            response = replace(response, events=redact.events(response.events))
        else:
            response = replace(
                response,
                body=redact.value(response.body),
                text=None if response.text is None else redact.text(response.text),
            )
        return request, replace(response, headers=redact.headers(response.headers))

    def _merge(self, name: str, key: str, new: Interaction, good: bool) -> list[Interaction] | None:
        """The cassette's interactions with ``new`` in them, or ``None`` to write nothing."""
        cassette = self.library.cassettes.get(name)
        existing = list(cassette.interactions) if cassette is not None else []
        if not self.replace_per_run or (name, key) in self._renewed:
            return [*existing, new]
        same = [i for i in existing if self._key(i.request) == key]
        if not good and any(verdict(i.response) is Verdict.GOOD for i in same):
            self._held[(name, key)].append(new)  # a good answer may still follow
            return None
        self._renewed.add((name, key))
        held = self._held.pop((name, key), [])
        kept = [i for i in existing if self._key(i.request) != key]
        return [*kept, *held, new]

    async def _write(self, name: str, interactions: list[Interaction]) -> None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        before = self.library.cassettes.get(name)
        text = dump_cassette(
            interactions,
            description=f"Recorded by tapedeck from {self.upstream} on {stamp}.",
            normalize=before.normalize if before is not None else (),
        )
        relative = f"{name}.yaml"
        try:
            await anyio.to_thread.run_sync(write_inside, self.library.root, relative, text)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise RecordingError(name, reason) from None
        if name not in self.library.cassettes:
            self.created.add(name)
        self.library.add(parse_cassette(text, str(self.library.root / relative), name))

    def _refused(self, status: int) -> None:
        if self._told_refused:
            return
        self._told_refused = True
        log.warning(
            "not recorded: the upstream refused the key (%d); give the client a real key "
            "(ANTHROPIC_API_KEY), or start tapedeck with --upstream-api-key-env NAME to send "
            "the key from that variable",
            status,
        )


def _what(response: RecordedResponse) -> str:
    if response.status >= 400:
        return str(response.status)
    if response.end is StreamEnd.DISCONNECT:
        return "a stream it cut"
    return "a stream that ended in an error event"
