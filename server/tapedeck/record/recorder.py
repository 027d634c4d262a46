"""Turning proxied exchanges into cassette files, without ever losing one.

- A recording **adds** its interaction to its cassette (``once``, ``new_episodes``). In
  ``all`` mode the first recording of a request in a run **replaces** the interactions
  recorded for that same request, and later ones in the run add to it (so a retried
  request becomes a sequence); other requests' interactions are never touched.
- **Only good answers become fixtures** by default: transient failures (408, 409, 429, 5xx,
  an in-stream ``error`` event, a stream the upstream cut) reach the client but are not
  written; ``record_errors`` keeps them. 401 and 403 are never written. A recording never
  replaces a good interaction (status below 400) with an error: in ``all`` mode an error
  for a request that has one is held back, written only if a good answer follows.
- What became of each answer is kept (:mod:`.outcomes`): the pytest plugin's report lines
  and end-of-run list say it.
- The ``before_record_request`` / ``before_record_response`` hooks see each recording last
  and may change or drop it.
- Writes to one cassette are serialized and atomic, relative to the cassette directory
  without following links; the library learns the new cassette before the client has the
  end of the response, so the next request can replay it.
- A disk that refuses a write (full, read-only, not writable) costs the recording, never the
  client's answer: one log line names the cassette and the reason, and the outcome says it.
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import anyio

from ..cassette.blobs import write_blob
from ..cassette.clients import identify
from ..cassette.library import CassetteLibrary
from ..cassette.load import parse_cassette
from ..cassette.matching import MatchRules
from ..cassette.model import Blob, Interaction, RecordedRequest, RecordedResponse
from ..cassette.save import dump_cassette, write_inside
from ..errors import CassetteError, RecordingError
from .hooks import Hook, hooked
from .outcomes import KEPT_TEST_IDS, Outcome, Outcomes
from .redact import Redactor
from .verdicts import DISK_ERRORS, Verdict, good, reason, verdict, what

log = logging.getLogger("tapedeck")
#: Request headers worth keeping in a recording (besides the matched ones).
KEPT_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")
#: The largest binary body recorded, unless the setting max_file_size says otherwise.
MAX_FILE_SIZE = 32 * 1024 * 1024


def headers_kept(
    headers: Iterable[tuple[str, str]], names: frozenset[str], redactor: Redactor
) -> tuple[tuple[str, str], ...]:
    """The request headers a recording keeps: those in ``names`` (lower case), redacted."""
    return redactor.headers((k.lower(), v) for k, v in headers if k.lower() in names)


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
        kept_test_ids: int = KEPT_TEST_IDS,
        max_file_size: int = MAX_FILE_SIZE,
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
        #: The largest binary body recorded (the setting max_file_size).
        self.max_file_size = max_file_size
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
        #: How each answer offered for recording ended (``tapedeck_recordings_total``):
        #: written, transient, refused, dropped (by a hook), held (a good one was kept)
        #: or failed (the file could not be written).
        self.results: Counter[str] = Counter()
        #: What became of each answer, by test id (the ``max_test_ids`` most recent), and the
        #: cassettes written.
        self.outcomes = Outcomes(kept_test_ids)

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
        uploads: tuple[Blob, ...] = (),
    ) -> RecordedRequest:
        """The request as a recording keeps it: the headers that matter, no secrets, and
        the client that sent it (:mod:`tapedeck.cassette.clients`); ``uploads`` are the
        files of a form (:mod:`tapedeck.cassette.blobs`), their secrets already out."""
        redact = self.redactor
        body = redact.value(body)
        return RecordedRequest(
            method=method,
            path=redact.text(path),
            query=tuple((k, redact.text(v)) for k, v in query),
            headers=headers_kept(headers, self.kept_headers, redact),
            body=body,
            client=identify(headers, body),
            uploads=uploads,
        )

    def _key(self, request: RecordedRequest) -> str:
        """The request's matching key, as the library indexes it."""
        r = request
        shape = self.rules.shape(r.method, r.path, r.query, r.headers, r.body)
        return shape.project(r.match).index_key

    async def save(
        self,
        name: str,
        request: RecordedRequest,
        response: RecordedResponse,
        test_id: str = "",
        whole: bool = True,
    ) -> bool:
        """Record one exchange under ``name`` (a safe, relative cassette name), if it is
        worth keeping; return whether the cassette was written. ``test_id`` is the request's
        (for :attr:`outcomes`); ``whole`` is False when a fault ended the stream before the
        upstream did (then nothing is written). Raise
        :class:`~tapedeck.errors.RecordingError` if the file cannot be written."""
        status = response.status
        if not whole:
            why = "a fault ended the stream early; a recording keeps only what the API sent whole"
            return self._not(test_id, name, status, why)
        worth = verdict(response)
        binary = response.binary
        if binary is not None and binary.size > self.max_file_size:
            self.results["dropped"] += 1
            why = (
                f"its binary body is {binary.size} bytes; the largest kept beside a cassette "
                f"is {self.max_file_size} bytes (setting max_file_size); nothing was written"
            )
            log.info("not recorded into %s: %s", name, why)
            return self._not(test_id, name, status, why)
        if worth is Verdict.REFUSED:
            self.results["refused"] += 1
            why = (
                f"the upstream refused the key ({status}): 401 and 403 answers are never "
                "recorded; nothing was written"
            )
            self._refused(name, why)
            return self._not(test_id, name, status, why)
        if worth is Verdict.TRANSIENT and not self.record_errors:
            self.results["transient"] += 1
            why = (
                f"the upstream answered {what(response)}: a transient failure is recorded "
                "only with record_errors; nothing was written"
            )
            log.info("not recorded into %s: %s", name, why)
            return self._not(test_id, name, status, why)
        kept = hooked(request, response, self.redactor, self.before_request, self.before_response)
        if kept is None:
            self.results["dropped"] += 1
            log.info("not recorded into %s: a before_record hook dropped it", name)
            return self._not(test_id, name, status, "a before_record hook dropped it")
        request, response = kept
        stamp = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        new = Interaction(request, response, recorded_at=stamp.isoformat().replace("+00:00", "Z"))
        key = self._key(request)
        if worth is Verdict.GOOD:
            self._failing.discard((name, key))
        else:
            self._failing.add((name, key))
        async with self._locks[name]:
            try:  # an evicted (or lazily listed) cassette's file is read again here
                interactions = self._merge(name, key, new, good(response))
            except CassetteError as exc:
                self.results["failed"] += 1
                why = f"its file could not be read again: {exc}; nothing was written"
                log.error("not recorded into %s: %s", name, why)
                return self._not(test_id, name, status, why)
            if interactions is None:
                self.results["held"] += 1
                why = (
                    f"the upstream answered {what(response)}; the good answer recorded before "
                    "is kept (written before a good answer only if one follows in this run)"
                )
                log.info("not recorded into %s: %s", name, why)
                return self._not(test_id, name, status, why)
            created = name not in self.library.cassettes
            try:
                await self._write(name, interactions)
            except RecordingError as exc:
                self.results["failed"] += 1
                why = f"the file could not be written: {exc.reason}"
                if not exc.disk:  # a name that can never be written: the tap answers 500
                    self._not(test_id, name, status, why)
                    raise
                # The disk refused it, but the answer is good: the client keeps it.
                why += (
                    "; nothing was written (a cassette already there is left as it was), and "
                    "the client was given its answer"
                )
                log.error("not recorded into %s: %s", name, why)
                return self._not(test_id, name, status, why)
        self.results["written"] += 1
        outcome = Outcome(name, status, True, new=created, interactions=len(interactions))
        self.outcomes.add(test_id, outcome)
        log.info("%s", outcome.text)
        return True

    def _not(self, test_id: str, name: str, status: int, why: str) -> bool:
        """Note that nothing was written into ``name``, and why; ``False``."""
        self.outcomes.add(test_id, Outcome(name, status, False, why))
        return False

    def _merge(
        self, name: str, key: str, new: Interaction, is_good: bool
    ) -> list[Interaction] | None:
        """The cassette's interactions with ``new`` in them, or ``None`` to write nothing."""
        cassette = self.library.cassettes.get(name)
        existing = list(cassette.interactions) if cassette is not None else []
        if not self.replace_per_run or (name, key) in self._renewed:
            return [*existing, new]
        same = [i for i in existing if self._key(i.request) == key]
        if not is_good and any(good(i.response) for i in same):
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
        blobs = [
            blob
            for i in interactions
            for blob in (*i.request.uploads, i.response.binary)
            if blob is not None and blob.data is not None
        ]
        try:
            for blob in blobs:  # first: a cassette never names bytes that are not there
                await anyio.to_thread.run_sync(write_blob, self.library.root, name, blob)
            await anyio.to_thread.run_sync(write_inside, self.library.root, relative, text)
        except (OSError, ValueError) as exc:
            why = reason(exc)
            if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
                raise RecordingError(name, why, disk=True) from None
            raise RecordingError(name, why) from None
        if name not in self.library.cassettes:
            self.created.add(name)
        file = self.library.root / relative
        self.library.add(parse_cassette(text, str(file), name), file)

    def _refused(self, name: str, why: str) -> None:
        if self._told_refused:  # once a run: every later refusal is the same story
            return
        self._told_refused = True
        log.warning(
            "not recorded into %s: %s (a cassette already there is left as it was); give the "
            "client a real key (ANTHROPIC_API_KEY), or send the key from a variable with the "
            "upstream_api_key_env setting (--upstream-api-key-env NAME)",
            name,
            why,
        )
