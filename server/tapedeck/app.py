"""The ASGI application: Messages API replay plus the ``/_tapedeck/`` admin endpoints.

Request headers that steer tapedeck:

- ``x-tapedeck-cassette: NAME`` — answer from this cassette only;
- ``x-tapedeck-test-id: ID`` — keep sequence positions separate for this test;
- ``x-tapedeck-timing: SPEC`` — pace this response differently (see :mod:`tapedeck.timing`).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api_errors import APIError, error_response, new_request_id
from .fault_book import FaultBook
from .faults import Fault, FaultKind, FaultSpecError, parse_faults
from .library import CassetteLibrary, Miss, UnsafeNameError
from .logs import RequestLog, log, note
from .matching import RequestShape
from .responses import ReplayResponse, StreamCut, wire_headers
from .sequences import Sequences
from .settings import Settings
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
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass
class Replayer:
    """What the request handlers share: settings, the cassettes and sequence positions."""

    settings: Settings
    library: CassetteLibrary
    sequences: Sequences
    faults: FaultBook


def _replayer(request: Request) -> Replayer:
    replayer: Replayer = request.app.state.replayer
    return replayer


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    # The whole body is read even when too large: answering before the client has finished
    # sending makes it see a broken connection (and retry) instead of the 413.
    if size > limit:
        raise APIError(
            413,
            f"tapedeck: request body is {size} bytes; the limit is {limit} "
            "bytes (setting max_body_size)",
        )
    return b"".join(chunks)


def _parse_body(raw: bytes, path: str) -> object:
    if not raw.strip():
        if path in POST_ONLY:
            raise APIError(400, "tapedeck: request body is empty; expected a JSON object")
        return None
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


def _selected_cassette(request: Request, library: CassetteLibrary) -> str | None:
    raw = request.headers.get("x-tapedeck-cassette")
    if raw is None:
        return None
    try:
        name = library.resolve_name(raw.strip())
    except UnsafeNameError as exc:
        raise APIError(400, f"tapedeck: x-tapedeck-cassette {raw!r} refused: {exc}") from None
    if name is None:
        raise APIError(
            404, f"tapedeck: x-tapedeck-cassette {raw!r}: no such cassette in {library.root}"
        )
    return name


def _timing(request: Request, default: Timing) -> Timing:
    spec = request.headers.get("x-tapedeck-timing")
    if spec is None:
        return default
    try:
        return Timing.parse(spec)
    except ValueError as exc:
        raise APIError(400, f"tapedeck: x-tapedeck-timing: {exc}") from None


async def replay(request: Request) -> ReplayResponse:
    """Answer a Messages API request from the cassettes."""
    started = time.perf_counter()
    r = _replayer(request)
    path, method = request.url.path, request.method
    if path in POST_ONLY and method != "POST":
        raise APIError(
            405, f"tapedeck: {method} is not allowed on {path}; use POST", headers={"allow": "POST"}
        )
    body = _parse_body(await _read_body(request, r.settings.max_body_size), path)
    cassette = _selected_cassette(request, r.library)
    timing = _timing(request, r.settings.timing)
    test_id = request.headers.get("x-tapedeck-test-id", "")
    faults = _faults(request, body) if "x-tapedeck-fault" in request.headers else None
    shape: RequestShape = r.library.rules.shape(
        method, path, request.query_params.multi_items(), request.headers.items(), body
    )
    found = r.library.find(shape, cassette)
    if isinstance(found, Miss):
        note(request.scope, f"miss: {found.detail}")
        raise APIError(404, f"tapedeck: no cassette matches {method} {path}; {found.detail}")
    index = r.sequences.take(test_id, found.cassette.name, found.key, len(found.entries))
    if index is None:
        note(request.scope, f"{found.cassette.name} (sequence used up)")
        raise APIError(
            404,
            f"tapedeck: sequence used up: cassette {found.cassette.name!r} has "
            f"answered all {len(found.entries)} interactions matching this request "
            f"(test id {test_id!r}); POST /_tapedeck/reset rewinds it",
        )
    entry = found.entries[index]
    what = (
        entry.cassette.name if len(found.entries) == 1 else f"{entry.cassette.name}#{entry.index}"
    )
    response = entry.interaction.response
    active = r.faults.active(test_id) if faults is None else faults
    fired = r.faults.fire(active, test_id, streaming=response.is_stream) if active else []
    if not fired:
        note(request.scope, what)
        return ReplayResponse(response, entry.headers, timing, started)
    listed = "; ".join(f.text for f in fired)
    note(request.scope, f"{what} faults: {listed}")
    log.info("fault on %s %s (%s): %s", method, path, what, listed)
    extra = [("x-tapedeck-faults", listed)]
    status = next((f for f in fired if f.kind is FaultKind.STATUS), None)
    if status is not None:
        error = status_response(status, new_request_id())
        extra += [("x-tapedeck-cassette", entry.cassette.name), ("x-tapedeck-source", "fault")]
        return ReplayResponse(error, wire_headers(error, extra), timing, started, fired)
    headers = entry.headers + [(k.encode(), v.encode("latin-1")) for k, v in extra]
    return ReplayResponse(response, headers, timing, started, fired)


@functools.lru_cache(maxsize=256)
def _parse_fault_header(text: str) -> tuple[Fault, ...]:
    return parse_faults(text)


def _faults(request: Request, body: object) -> tuple[Fault, ...]:
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


async def faults_admin(request: Request) -> Response:
    """``GET``/``PUT``/``DELETE /_tapedeck/faults``, scoped by ``x-tapedeck-test-id``."""
    book = _replayer(request).faults
    test_id = request.headers.get("x-tapedeck-test-id") or None
    if request.method == "PUT":
        body = _parse_body(await _read_body(request, 1024 * 1024), request.url.path)
        specs = body.get("faults") if isinstance(body, dict) else None
        if isinstance(specs, list) and all(isinstance(s, str) for s in specs):
            specs = ";".join(specs)
        if not isinstance(specs, str):
            raise APIError(400, 'tapedeck: expected a body like {"faults": "ping:every=5"}')
        try:
            book.put(parse_faults(specs), test_id)
        except FaultSpecError as exc:
            raise APIError(400, f"tapedeck: {exc}") from None
    elif request.method == "DELETE":
        book.clear(test_id)
    current = book.active(test_id or "")
    return JSONResponse(
        {
            "status": "ok",
            "scope": test_id or "server",
            "faults": "; ".join(f.text for f in current) or "none",
        }
    )


async def health(request: Request) -> Response:
    """``GET /_tapedeck/health``: liveness, mode and how many cassettes are loaded."""
    r = _replayer(request)
    return JSONResponse({"status": "ok", "mode": str(r.settings.mode), "cassettes": len(r.library)})


async def reset(request: Request) -> Response:
    """``POST /_tapedeck/reset``: rewind sequences (only one test id's, if the header is set)."""
    r = _replayer(request)
    test_id = request.headers.get("x-tapedeck-test-id")
    rewound = r.sequences.reset(test_id)
    r.faults.rewind(test_id)
    return JSONResponse({"status": "ok", "rewound": rewound})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    if "tapedeck.note" not in request.scope.get("state", {}):
        note(request.scope, f"{exc.error_type}: {exc.message.removeprefix('tapedeck: ')[:120]}")
    return error_response(exc.status, exc.message, exc.error_type, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"tapedeck: no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"tapedeck: {request.method} is not allowed on {request.url.path}"
    else:
        message = f"tapedeck: {exc.detail}"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StreamCut):  # deliberate, and the response has already started
        return Response(status_code=500)
    log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
    return error_response(500, "tapedeck: internal error; see the server log", "api_error")


def create_app(settings: Settings, library: CassetteLibrary | None = None) -> Starlette:
    """Build the ASGI app. Loads the cassettes unless ``library`` is given.

    >>> app = create_app(Settings(cassettes=Path("cassettes")))  # doctest: +SKIP
    """
    library = library or CassetteLibrary.load(settings.cassettes, settings.match_rules())
    app = Starlette(
        routes=[
            Route("/_tapedeck/health", health, methods=["GET"]),
            Route("/_tapedeck/reset", reset, methods=["POST"]),
            Route("/_tapedeck/faults", faults_admin, methods=["GET", "PUT", "DELETE"]),
            Route("/v1/{rest:path}", replay, methods=_ALL_METHODS),
        ],
        middleware=[Middleware(RequestLog)],
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.router.redirect_slashes = False  # `POST /v1` is a 404, not a redirect to `/v1/`
    app.state.replayer = Replayer(
        settings, library, Sequences(settings.sequence_end), FaultBook(settings.faults)
    )
    return app
