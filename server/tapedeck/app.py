"""The ASGI application: Messages API replay plus the ``/_tapedeck/`` admin endpoints.

Request headers that steer tapedeck:

- ``x-tapedeck-cassette: NAME`` — answer from this cassette only;
- ``x-tapedeck-test-id: ID`` — keep sequence positions separate for this test;
- ``x-tapedeck-timing: SPEC`` — pace this response differently (see :mod:`tapedeck.timing`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api_errors import APIError, error_response, new_request_id
from .batches import BATCHES, with_results_url
from .cassette import RecordedResponse
from .fault_book import FaultBook
from .faults import Fault, FaultKind, FaultSpecError, parse_faults
from .library import CassetteLibrary, Hit, UnsafeNameError
from .logs import RequestLog, log, note
from .matching import RequestShape
from .proxy import ProxyResponse, Upstream, UpstreamConfig, UpstreamError, response_headers
from .recording import Recorder, cassette_name
from .responses import DROPPED_HEADERS, ReplayResponse, StreamCut, header_value, wire_headers
from .sequences import Sequences
from .settings import ConfigError, Mode, Settings
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
    upstream: Upstream
    recorder: Recorder


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


def _selected_cassette(
    request: Request, library: CassetteLibrary, must_exist: bool = True
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


def _timing(request: Request, default: Timing) -> Timing:
    spec = request.headers.get("x-tapedeck-timing")
    if spec is None:
        return default
    try:
        return Timing.parse(spec)
    except ValueError as exc:
        raise APIError(400, f"tapedeck: x-tapedeck-timing: {exc}") from None


async def messages(request: Request) -> ReplayResponse | ProxyResponse:
    """Answer an API request: from the cassettes, or through the upstream, by mode."""
    started = time.perf_counter()
    r = _replayer(request)
    path, method = request.url.path, request.method
    if path in POST_ONLY and method != "POST":
        raise APIError(
            405, f"tapedeck: {method} is not allowed on {path}; use POST", headers={"allow": "POST"}
        )
    raw = await _read_body(request, r.settings.max_body_size)
    body = _parse_body(raw, path)
    mode = r.settings.mode
    cassette = _selected_cassette(request, r.library, must_exist=not mode.proxies)
    timing = _timing(request, r.settings.timing)
    test_id = request.headers.get("x-tapedeck-test-id", "")
    faults = _faults(request, body) if "x-tapedeck-fault" in request.headers else None
    shape: RequestShape = r.library.rules.shape(
        method, path, request.query_params.multi_items(), request.headers.items(), body
    )
    if mode in (Mode.REPLAY, Mode.AUTO):
        found = r.library.find(shape, cassette if cassette in r.library.cassettes else None)
        if isinstance(found, Hit):
            return _replay(request, r, found, timing, test_id, faults, started)
        if mode is Mode.REPLAY:
            note(request.scope, f"miss: {found.detail}")
            raise APIError(404, f"tapedeck: no cassette matches {method} {path}; {found.detail}")
    return await _proxy(request, r, raw, body, shape, cassette, faults, test_id, started)


def _fire(
    request: Request,
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
        log.info("fault on %s %s (%s): %s", request.method, request.url.path, what, listed)
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
    request: Request,
    r: Replayer,
    found: Hit,
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
    response = entry.interaction.response
    headers = entry.headers
    if request.url.path.startswith(BATCHES) and b'"results_url"' in response.payload:
        response = with_results_url(response, _base_url(request))
        extra = [("x-tapedeck-cassette", name), ("x-tapedeck-source", "cassette")]
        headers = wire_headers(response, extra)
    fired = _fire(request, r, faults, test_id, response.is_stream, what)
    error = _status_fault(fired, "fault", name, timing, started)
    if error is not None:
        return error  # the recorded answer is still due: the sequence does not move on
    r.sequences.advance(test_id, found.cassette.name, found.key)
    if not fired:
        return ReplayResponse(response, headers, timing, started)
    headers = [*headers, (b"x-tapedeck-faults", header_value(_listed(fired)))]
    return ReplayResponse(response, headers, timing, started, fired)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _proxy(
    request: Request,
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
    query = request.scope.get("query_string", b"").decode("latin-1")
    sent_at = time.perf_counter()
    try:
        upstream = await r.upstream.open(
            request.method, request.url.path, query, request.headers, raw
        )
    except UpstreamError as exc:
        raise APIError(502, f"tapedeck: {exc}", "api_error") from None
    headers_at = time.perf_counter()
    secret = frozenset(r.settings.redact_headers)
    recorded_headers = response_headers(upstream, secret)
    client_headers = [
        (k.lower(), v)
        for k, v in upstream.headers.multi_items()
        if k.lower() not in DROPPED_HEADERS
    ]
    extra = [("x-tapedeck-source", "upstream")]
    if name:
        extra.append(("x-tapedeck-cassette", name))
    if fired:
        extra.append(("x-tapedeck-faults", _listed(fired)))
    headers = [(k.encode("latin-1"), header_value(v)) for k, v in [*client_headers, *extra]]
    record = None
    if name is not None:
        recorder = r.recorder
        recorded_request = recorder.request(
            request.method,
            request.url.path,
            request.query_params.multi_items(),
            request.headers.items(),
            body,
        )

        async def record(response: RecordedResponse) -> None:
            await recorder.save(name, recorded_request, response)

    rewrite = _base_url(request) if request.url.path.startswith(BATCHES) else None
    return ProxyResponse(
        upstream,
        sent_at=sent_at,
        headers_at=headers_at,
        headers=headers,
        recorded_headers=recorded_headers,
        faults=fired,
        record=record,
        results_url_base=rewrite,
    )


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
    api_key = None
    if settings.upstream_api_key_env:
        api_key = os.environ.get(settings.upstream_api_key_env)
        if not api_key:
            raise ConfigError(
                f"--upstream-api-key-env: the environment variable "
                f"{settings.upstream_api_key_env} is not set (or empty)"
            )
    upstream = Upstream(
        UpstreamConfig(settings.upstream, api_key, read_timeout=settings.upstream_timeout)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await upstream.aclose()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/_tapedeck/health", health, methods=["GET"]),
            Route("/_tapedeck/reset", reset, methods=["POST"]),
            Route("/_tapedeck/faults", faults_admin, methods=["GET", "PUT", "DELETE"]),
            Route("/v1/{rest:path}", messages, methods=_ALL_METHODS),
        ],
        middleware=[Middleware(RequestLog)],
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.router.redirect_slashes = False  # `POST /v1` is a 404, not a redirect to `/v1/`
    recorder = Recorder(
        library, settings.upstream, settings.match_headers, frozenset(settings.redact_headers)
    )
    app.state.replayer = Replayer(
        settings,
        library,
        Sequences(settings.sequence_end),
        FaultBook(settings.faults),
        upstream,
        recorder,
    )
    return app
