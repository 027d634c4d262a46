"""The ``/_tapedeck/`` admin endpoints, and API-shaped errors for everything not ``/v1/``.

- ``GET /_tapedeck/health``: liveness, mode, how many cassettes are loaded (and which
  worker answered, with ``--workers``);
- ``POST /_tapedeck/reset``: rewind sequences, fault counters, quotas and clocks (one test
  id's with the ``x-tapedeck-test-id`` header);
- ``GET``/``PUT``/``DELETE /_tapedeck/faults``: the faults in force, scoped the same way;
- ``GET``/``POST``/``DELETE /_tapedeck/clock``: the clock quotas run on, scoped the same way;
- ``GET /_tapedeck/unused``: cassettes and interactions that answered nothing yet;
- ``GET``/``DELETE /_tapedeck/journal``, ``GET /_tapedeck/journal/stream``: the request
  journal (:mod:`tapedeck.observe.journal`);
- ``GET /_tapedeck/cassettes`` and ``/_tapedeck/cassettes/{name}``: the library as JSON
  (:mod:`tapedeck.observe.catalog`);
- ``GET /_tapedeck/ui/``: the web view (:mod:`tapedeck.observe.web`);
- ``GET /metrics``: Prometheus metrics (:mod:`tapedeck.observe.metrics`).
"""

from __future__ import annotations

import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import APIError, CassetteError, FaultSpecError
from ..observe.catalog import cassette, cassettes
from ..observe.journal import journal_admin, journal_stream
from ..observe.metrics import metrics_endpoint
from ..observe.web import page, to_page
from ..shaping.clock import Clock
from ..shaping.faults import listed, over_limit, parse_faults
from ..wire.errors import error_json
from ..wire.ratelimit import rfc3339
from . import workers
from .handler import Handler
from .incoming import Incoming
from .logs import SAID, log
from .request_body import parse_json_object

_ADMIN_BODY_LIMIT = 1024 * 1024


def _handler(request: Request) -> Handler:
    handler: Handler = request.app.state.handler
    return handler


async def faults_admin(request: Request) -> Response:
    """``GET``/``PUT``/``DELETE /_tapedeck/faults``, scoped by ``x-tapedeck-test-id``."""
    gate = _handler(request).gate
    test_id = request.headers.get("x-tapedeck-test-id") or None
    if request.method == "PUT":
        incoming = await Incoming.read(request.scope, request.receive, _ADMIN_BODY_LIMIT)
        body = parse_json_object(incoming.body)
        specs = body.get("faults")
        if isinstance(specs, list) and all(isinstance(s, str) for s in specs):
            specs = ";".join(specs)
        if not isinstance(specs, str):
            raise APIError(400, 'tapedeck: expected a body like {"faults": "ping:every=5"}')
        most = _handler(request).settings.max_header_size
        if len(specs) > most:  # kept per test id: bounded as the x-tapedeck-fault header is
            raise APIError(
                400,
                f"tapedeck: a fault list is at most max_header_size ({most:,} characters), "
                f"got {len(specs):,}",
            )
        try:
            faults = parse_faults(specs)
        except FaultSpecError as exc:
            raise APIError(400, f"tapedeck: {exc}") from None
        problem = over_limit(faults, _handler(request).settings.max_delay)
        if problem:
            raise APIError(400, f"tapedeck: {problem}")
        await gate.put(faults, test_id)
    elif request.method == "DELETE":
        await gate.clear(test_id)
    current = await gate.listed(test_id or "")
    return JSONResponse(
        {"status": "ok", "scope": test_id or "server", "faults": listed(current) or "none"}
    )


async def clock_admin(request: Request) -> Response:
    """``GET``/``POST``/``DELETE /_tapedeck/clock``, scoped by ``x-tapedeck-test-id``.

    ``POST`` stops the scope's clock where it is and moves it ``advance_s`` seconds ahead
    (``{"advance_s": 30}``; an empty body or ``{}`` only stops it); ``DELETE`` puts a test id
    back on the server's clock, or the server's clock back on the wall clock.
    """
    clocks = _handler(request).faults.clocks
    test_id = request.headers.get("x-tapedeck-test-id") or None
    if request.method == "POST":
        incoming = await Incoming.read(request.scope, request.receive, _ADMIN_BODY_LIMIT)
        body = parse_json_object(incoming.body) if incoming.body.strip() else {}
        clock = clocks.advance(test_id, _advance_s(body))
    elif request.method == "DELETE":
        clock = clocks.release(test_id)
    else:
        clock = clocks.clock(test_id)
    return JSONResponse(_clock_state(clock, test_id))


def _advance_s(body: dict[str, object]) -> float:
    unknown = sorted(set(body) - {"advance_s"})
    seconds = body.get("advance_s", 0)
    if (
        unknown
        or isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        shown = f"unknown key {unknown[0]!r}" if unknown else f"advance_s {seconds!r}"
        raise APIError(
            400,
            f'tapedeck: {shown}: expected a body like {{"advance_s": 30}} (seconds >= 0 to '
            "move the clock ahead; {} or no body only stops it)",
        )
    return float(seconds)


def _clock_state(clock: Clock, test_id: str | None) -> dict[str, object]:
    now = clock.now()
    return {
        "status": "ok",
        "scope": test_id or "server",
        "clock": "running" if clock.running else "stopped",
        "now": rfc3339(now, exact=True),
        "epoch_s": now,
    }


async def health(request: Request) -> Response:
    """``GET /_tapedeck/health``: liveness, mode and how many cassettes are loaded; with
    ``--state redis://...``, 503 and the reason while the state store does not answer."""
    handler = _handler(request)
    body: dict[str, object] = {
        "status": "ok",
        "mode": str(handler.settings.mode),
        "cassettes": len(handler.library),
    }
    if workers.number:  # which of the --workers answered
        body["worker"] = workers.number
    store = handler.store
    if store is not None and await store.check() is not None:
        body["status"] = "unavailable"
        body["reason"] = store.unavailable().message
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


async def reset(request: Request) -> Response:
    """``POST /_tapedeck/reset``: rewind sequences, fault counters and quotas, and put clocks
    back on the wall clock (only one test id's, if the header is set)."""
    handler = _handler(request)
    test_id = request.headers.get("x-tapedeck-test-id")
    rewound = await handler.sequences.reset(test_id)
    await handler.gate.rewind(test_id)
    handler.faults.clocks.reset(test_id)
    return JSONResponse({"status": "ok", "rewound": rewound})


async def unused(request: Request) -> Response:
    """``GET /_tapedeck/unused``: the cassettes, and the interactions of the others, that
    have answered no request since the server started."""
    handler = _handler(request)
    library, served = handler.library, handler.cassettes
    cassettes: list[str] = []
    interactions: list[dict[str, object]] = []
    for name in sorted(library.cassettes):
        entries = library.entries(name)
        idle = [e for e in entries if not served.was_served(e)]
        if len(idle) == len(entries):
            cassettes.append(name)
            continue
        interactions += [
            {
                "cassette": name,
                "index": e.index,
                "where": f"{e.cassette.path}:{e.interaction.line}",
            }
            for e in idle
        ]
    return JSONResponse({"cassettes": cassettes, "interactions": interactions})


ROUTES = [
    Route("/_tapedeck/health", health, methods=["GET"]),
    Route("/_tapedeck/reset", reset, methods=["POST"]),
    Route("/_tapedeck/faults", faults_admin, methods=["GET", "PUT", "DELETE"]),
    Route("/_tapedeck/clock", clock_admin, methods=["GET", "POST", "DELETE"]),
    Route("/_tapedeck/unused", unused, methods=["GET"]),
    Route("/_tapedeck/journal", journal_admin, methods=["GET", "DELETE"]),
    Route("/_tapedeck/journal/stream", journal_stream, methods=["GET"]),
    Route("/_tapedeck/cassettes", cassettes, methods=["GET"]),
    Route("/_tapedeck/cassettes/{name:path}", cassette, methods=["GET"]),
    Route("/_tapedeck/ui", to_page, methods=["GET"]),
    Route("/_tapedeck/ui/", page, methods=["GET"]),
    Route("/_tapedeck/ui/{file}", page, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]


def error_response(
    status: int, message: str, error_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """An API-shaped error as a Starlette response."""
    payload, request_id = error_json(status, message, error_type)
    return Response(
        payload,
        status_code=status,
        headers={"request-id": request_id, **(headers or {})},
        media_type="application/json",
    )


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    said = f"{exc.error_type}: {exc.message.removeprefix('tapedeck: ')[:120]}"
    request.scope.setdefault("state", {})[SAID] = said
    return error_response(exc.status, exc.message, exc.error_type, dict(exc.headers or {}))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"tapedeck: no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"tapedeck: {request.method} is not allowed on {request.url.path}"
    else:
        message = f"tapedeck: {exc.detail}"
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


async def internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
    return error_response(500, "tapedeck: internal error; see the server log", "api_error")


async def cassette_error(request: Request, exc: Exception) -> Response:
    """A cassette that could not be loaded on first use (``load: lazy``): its ``file:line``."""
    return error_response(500, f"tapedeck: cassette {exc}", "api_error")


EXCEPTION_HANDLERS = {
    APIError: api_error,
    CassetteError: cassette_error,
    HTTPException: http_error,
    Exception: internal_error,
}
