"""The API side: answering ``/v1/`` requests from cassettes or through the upstream.

Request headers that steer tapedeck:

- ``x-tapedeck-cassette: NAME`` — answer from this cassette only (record into it);
- ``x-tapedeck-test-id: ID`` — keep sequence positions and fault counters for this test;
- ``x-tapedeck-timing: SPEC`` — pace this response differently (see :mod:`tapedeck.timing`);
- ``x-tapedeck-fault: SPEC`` — break this response (see :mod:`tapedeck.faults`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from .api_errors import APIError, new_request_id
from .batches import BATCHES, with_results_url
from .cassette import RecordedResponse
from .fault_book import FaultBook
from .faults import Fault, FaultKind, FaultSpecError, parse_faults
from .incoming import Incoming
from .library import CassetteLibrary, Hit, UnsafeNameError, cassette_headers
from .logs import log, note
from .matching import RequestShape
from .proxy import ProxyResponse, Upstream
from .recording import Recorder, cassette_name
from .redact import redact_text, redact_value
from .responses import ReplayResponse, header_value, wire_headers
from .sequences import Sequences
from .settings import Mode, Settings
from .shaping import status_response
from .timing import Timing

_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
#: Endpoints that only answer POST and always take a JSON object.
POST_ONLY = frozenset({"/v1/messages", "/v1/messages/count_tokens"})


class ShapeCache:
    """Parsed bodies and request shapes of requests seen before, keyed by their bytes.

    Test suites send the same few requests over and over; parsing and normalizing each
    body again would be most of the cost of a replayed response.
    """

    def __init__(self, library: CassetteLibrary, size: int = 2048) -> None:
        self.library = library
        self.size = size
        self._seen: dict[tuple[object, ...], tuple[object, RequestShape]] = {}

    def get(self, request: Incoming) -> tuple[object, RequestShape]:
        """The parsed body and the shape of ``request``; 400 if the body is not JSON."""
        rules = self.library.rules
        matched = tuple(request.headers.get(h) for h in rules.headers)
        key = (request.method, request.path, request.query_string, matched, request.body)
        found = self._seen.get(key)
        if found is None:
            body = _parse_body(request.body, request.path)
            query = request.query_items()
            if b"sk-ant-" in request.body or b"sk-ant-" in request.query_string:
                # Recordings hold a placeholder where a key was: match what they hold.
                body = redact_value(body)
                query = [(k, redact_text(v)) for k, v in query]
            shape = rules.shape(request.method, request.path, query, request.header_items, body)
            if len(self._seen) >= self.size:
                self._seen.clear()
            found = self._seen[key] = (body, shape)
        return found


@dataclass
class Replayer:
    """What the request handlers share: settings, the cassettes and sequence positions."""

    settings: Settings
    library: CassetteLibrary
    sequences: Sequences
    faults: FaultBook
    upstream: Upstream
    recorder: Recorder
    shapes: ShapeCache


def _parse_body(raw: bytes, path: str) -> object:
    if not raw.strip():
        if path in POST_ONLY:
            raise APIError(400, "tapedeck: request body is empty; expected a JSON object")
        return None
    return parse_json_object(raw)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; 400 ``invalid_request_error`` if not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(400, "tapedeck: request body is not UTF-8 text") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise APIError(400, f"tapedeck: request body is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. too deeply nested, huge integers
        raise APIError(400, f"tapedeck: request body cannot be parsed as JSON: {exc}") from None
    if not isinstance(body, dict):
        kind = _JSON_TYPES.get(type(body), "value")
        raise APIError(400, f"tapedeck: request body must be a JSON object, got a JSON {kind}")
    return body


def _selected_cassette(
    request: Incoming, library: CassetteLibrary, must_exist: bool = True
) -> str | None:
    raw = request.headers.get("x-tapedeck-cassette")
    if raw is None:
        return None
    try:
        name = library.safe_name(raw.strip())
    except UnsafeNameError as exc:
        raise APIError(400, f"tapedeck: x-tapedeck-cassette {raw!r} refused: {exc}") from None
    if must_exist and name not in library.cassettes:
        raise APIError(
            404, f"tapedeck: x-tapedeck-cassette {raw!r}: no such cassette in {library.root}"
        )
    return name


def _timing(request: Incoming, default: Timing) -> Timing:
    spec = request.headers.get("x-tapedeck-timing")
    if spec is None:
        return default
    try:
        return Timing.parse(spec)
    except ValueError as exc:
        raise APIError(400, f"tapedeck: x-tapedeck-timing: {exc}") from None


async def messages(
    request: Incoming, r: Replayer, started: float
) -> ReplayResponse | ProxyResponse:
    """Answer an API request: from the cassettes, or through the upstream, by mode."""
    path, method = request.path, request.method
    if path in POST_ONLY and method != "POST":
        raise APIError(
            405, f"tapedeck: {method} is not allowed on {path}; use POST", headers={"allow": "POST"}
        )
    raw = request.body
    mode = r.settings.mode
    cassette = _selected_cassette(request, r.library, must_exist=not mode.proxies)
    timing = _timing(request, r.settings.timing)
    test_id = request.headers.get("x-tapedeck-test-id", "")
    body, shape = r.shapes.get(request)
    faults = _faults(request, body) if "x-tapedeck-fault" in request.headers else None
    if mode in (Mode.REPLAY, Mode.AUTO):
        found = r.library.find(shape, cassette if cassette in r.library.cassettes else None)
        if isinstance(found, Hit):
            return _replay(request, r, found, body, timing, test_id, faults, started)
        if mode is Mode.REPLAY:
            note(request.scope, f"miss: {found.detail}")
            raise APIError(404, f"tapedeck: no cassette matches {method} {path}; {found.detail}")
    return await _proxy(request, r, raw, body, shape, cassette, faults, test_id, started)


def _fire(
    request: Incoming,
    r: Replayer,
    faults: tuple[Fault, ...] | None,
    test_id: str,
    streaming: bool,
    what: str,
) -> list[Fault]:
    active = r.faults.active(test_id) if faults is None else faults
    fired = r.faults.fire(active, test_id, streaming=streaming) if active else []
    if fired:
        listed = "; ".join(f.text for f in fired)
        note(request.scope, f"{what} faults: {listed}")
        log.info("fault on %s %s (%s): %s", request.method, request.path, what, listed)
    else:
        note(request.scope, what)
    return fired


def _status_fault(
    fired: list[Fault], source: str, cassette: str | None, timing: Timing, started: float
) -> ReplayResponse | None:
    status = next((f for f in fired if f.kind is FaultKind.STATUS), None)
    if status is None:
        return None
    error = status_response(status, new_request_id())
    extra = [("x-tapedeck-faults", _listed(fired)), ("x-tapedeck-source", source)]
    if cassette:
        extra.append(("x-tapedeck-cassette", cassette))
    return ReplayResponse(error, wire_headers(error, extra), timing, started, fired)


def _listed(fired: list[Fault]) -> str:
    return "; ".join(f.text for f in fired)


def _replay(
    request: Incoming,
    r: Replayer,
    found: Hit,
    body: object,
    timing: Timing,
    test_id: str,
    faults: tuple[Fault, ...] | None,
    started: float,
) -> ReplayResponse:
    index = r.sequences.peek(test_id, found.cassette.name, found.key, len(found.entries))
    if index is None:
        note(request.scope, f"{found.cassette.name} (sequence used up)")
        raise APIError(
            404,
            f"tapedeck: sequence used up: cassette {found.cassette.name!r} has "
            f"answered all {len(found.entries)} interactions matching this request "
            f"(test id {test_id!r}); POST /_tapedeck/reset rewinds it",
        )
    entry = found.entries[index]
    name = entry.cassette.name
    what = name if len(found.entries) == 1 else f"{name}#{entry.index}"
    response, headers = entry.interaction.response, entry.headers
    if request.path in POST_ONLY:
        wants_stream = isinstance(body, dict) and body.get("stream") is True
        response, headers = r.library.in_shape(entry, wants_stream)
    if request.path.startswith(BATCHES) and b'"results_url"' in response.payload:
        response = with_results_url(response, request.base_url)
        headers = wire_headers(response, cassette_headers(name))
    fired = _fire(request, r, faults, test_id, response.is_stream, what)
    error = _status_fault(fired, "fault", name, timing, started)
    if error is not None:
        return error  # the recorded answer is still due: the sequence does not move on
    r.sequences.advance(test_id, found.cassette.name, found.key)
    if not fired:
        return ReplayResponse(response, headers, timing, started)
    headers = [*headers, (b"x-tapedeck-faults", header_value(_listed(fired)))]
    return ReplayResponse(response, headers, timing, started, fired)


async def _proxy(
    request: Incoming,
    r: Replayer,
    raw: bytes,
    body: object,
    shape: RequestShape,
    cassette: str | None,
    faults: tuple[Fault, ...] | None,
    test_id: str,
    started: float,
) -> ProxyResponse | ReplayResponse:
    mode = r.settings.mode
    name = (cassette or cassette_name(shape)) if mode is not Mode.PASSTHROUGH else None
    streaming = isinstance(body, dict) and body.get("stream") is True
    fired = _fire(request, r, faults, test_id, streaming, f"upstream ({name or 'not recorded'})")
    error = _status_fault(fired, "fault", None, r.settings.timing, started)
    if error is not None:  # answered without spending an upstream request
        return error
    extra = [("x-tapedeck-source", "upstream")]
    if name:
        extra.append(("x-tapedeck-cassette", name))
    if fired:
        extra.append(("x-tapedeck-faults", _listed(fired)))
    record = None
    if name is not None:
        recorder = r.recorder
        recorded_request = recorder.request(
            request.method, request.path, request.query_items(), request.header_items, body
        )

        async def record(response: RecordedResponse) -> None:
            await recorder.save(name, recorded_request, response)

    query = request.query_string.decode("latin-1")
    return ProxyResponse(
        r.upstream,
        (request.method, request.path, query, request.header_items, request.body),
        headers=extra,
        secret_headers=frozenset(r.settings.redact_headers),
        faults=fired,
        record=record,
        results_url_base=request.base_url if request.path.startswith(BATCHES) else None,
    )


@functools.lru_cache(maxsize=256)
def _parse_fault_header(text: str) -> tuple[Fault, ...]:
    return parse_faults(text)


def _faults(request: Incoming, body: object) -> tuple[Fault, ...]:
    """The faults a request's own ``x-tapedeck-fault`` header asks for."""
    text = request.headers["x-tapedeck-fault"]
    try:
        faults = _parse_fault_header(text)
    except FaultSpecError as exc:
        raise APIError(400, f"tapedeck: x-tapedeck-fault: {exc}") from None
    streaming = isinstance(body, dict) and body.get("stream") is True
    misplaced = [f.text for f in faults if f.streams_only and not streaming]
    if misplaced:
        raise APIError(
            400,
            f"tapedeck: x-tapedeck-fault: {', '.join(misplaced)} only applies to streaming "
            'requests ("stream": true); a non-streaming request takes status and latency',
        )
    return faults
