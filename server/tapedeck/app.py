"""The ASGI application: the ``/v1/`` API (see :mod:`tapedeck.api`) and the
``/_tapedeck/`` admin endpoints.

``/v1/`` requests go straight to :func:`tapedeck.api.messages` without Starlette's
routing; everything else (admin endpoints, 404s, lifespan) goes through a small Starlette
app.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import Replayer, ShapeCache, messages, parse_json_object
from .api_errors import APIError, error_response
from .fault_book import FaultBook
from .faults import FaultSpecError, parse_faults
from .incoming import Incoming
from .library import CassetteLibrary
from .logs import RequestLog, log, log_request, note
from .proxy import ProxyResponse, Upstream, UpstreamConfig
from .recording import Recorder
from .responses import ReplayResponse, StreamCut
from .sequences import Sequences
from .settings import ConfigError, Settings

_ADMIN_BODY_LIMIT = 1024 * 1024


def _replayer(request: Request) -> Replayer:
    replayer: Replayer = request.app.state.replayer
    return replayer


async def faults_admin(request: Request) -> Response:
    """``GET``/``PUT``/``DELETE /_tapedeck/faults``, scoped by ``x-tapedeck-test-id``."""
    book = _replayer(request).faults
    test_id = request.headers.get("x-tapedeck-test-id") or None
    if request.method == "PUT":
        incoming = await Incoming.read(request.scope, request.receive, _ADMIN_BODY_LIMIT)
        body = parse_json_object(incoming.body)
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
    log.error("internal error on %s %s: %r", request.method, request.url.path, exc)
    return error_response(500, "tapedeck: internal error; see the server log", "api_error")


class API:
    """Serves ``/v1/`` requests; answers tapedeck's own errors in the API's shape; logs
    each request (the status is known from the response, so ``send`` is not wrapped)."""

    def __init__(self, replayer: Replayer) -> None:
        self.replayer = replayer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        response: ReplayResponse | ProxyResponse | Response
        try:
            request = await Incoming.read(scope, receive, self.replayer.settings.max_body_size)
            response = await messages(request, self.replayer, started)
        except APIError as exc:
            if "tapedeck.note" not in scope.get("state", {}):
                note(scope, f"{exc.error_type}: {exc.message.removeprefix('tapedeck: ')[:120]}")
            response = error_response(exc.status, exc.message, exc.error_type, exc.headers)
        except Exception as exc:  # a bug: say so in the API's shape, never a traceback
            log.exception("internal error on %s %s: %r", scope["method"], scope["path"], exc)
            response = error_response(500, "tapedeck: internal error; see the server log")
        cut = False
        try:
            await response(scope, receive, send)
        except StreamCut:
            cut = True
            raise
        finally:
            log_request(scope, _status(response), started, cut)


def _status(response: ReplayResponse | ProxyResponse | Response) -> int:
    if isinstance(response, ReplayResponse | ProxyResponse):
        return response.status
    return response.status_code


class Tapedeck:
    """The whole server: ``/v1/`` to :class:`API`, the rest to the admin app."""

    def __init__(self, api: ASGIApp, admin: Starlette) -> None:
        self.api = api
        self.admin = admin
        self.state = admin.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.api(scope, receive, send)
        else:
            await self.admin(scope, receive, send)


def create_app(settings: Settings, library: CassetteLibrary | None = None) -> Tapedeck:
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
    replayer = Replayer(
        settings,
        library,
        Sequences(settings.sequence_end),
        FaultBook(settings.faults),
        upstream,
        recorder,
        ShapeCache(library),
    )
    app.state.replayer = replayer
    return Tapedeck(API(replayer), app)
