"""The ASGI application: ``/v1/`` to the handler, the rest to the admin app.

A cloud platform's request (Vertex, Foundry, ...) is first mapped onto the first-party
one by its front door (:mod:`tapedeck.platforms`), and its answer back. Every HTTP
request then passes the checks of :mod:`tapedeck.server.access` (Host,
Origin, JSON bodies, the admin token). ``/v1/`` requests then go straight to
:class:`~tapedeck.server.handler.Handler` without Starlette's routing; everything else
(admin endpoints, 404s, lifespan) goes through a small Starlette app, but for the probes
agent runtimes send to see that the server is there — ``HEAD /``, and Claude Code's
``HEAD /api/hello`` at start-up —, answered 200 with no body. The upstream client is made
when the app starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from ..cassette.index import LibraryIndex
from ..cassette.index_cache import default_cache_dir
from ..cassette.lazy_events import EventStore
from ..cassette.library import CassetteLibrary
from ..cassette.on_demand import Loading
from ..cassette.save import sweep_temporary
from ..config import Mode, Settings
from ..config.suggest import nearest_directory
from ..errors import APIError, ConfigError
from ..platforms import enter, find
from ..record.recorder import Recorder
from ..record.redact import Redactor
from ..source.upstream import Upstream, UpstreamConfig
from ..wire.errors import error_json
from .access import Access, is_preflight, with_cors
from .admin import EXCEPTION_HANDLERS, ROUTES
from .handler import Handler
from .incoming import HEADERS, Incoming
from .logs import RequestLog, log, log_request

if TYPE_CHECKING:
    import httpx

#: Paths a ``HEAD`` probe asks for: ``/``, and Claude Code's ``/api/hello`` (the API's own).
PROBES = frozenset({"/", "/api/hello"})


class Tapedeck:
    """The whole server: ``/v1/`` to the :class:`Handler`, the rest to the admin app."""

    def __init__(self, handler: Handler, admin: Starlette, access: Access) -> None:
        self.handler = handler
        self.admin = admin
        self.access = access
        self.state = admin.state

    def close(self) -> None:
        """End the live journal streams, so that a server stopping need not wait for them
        (safe from any thread: the streams check it twice a second), and cut short the
        reading on of answers whose client left (:mod:`tapedeck.wire.drain`)."""
        if self.handler.journal is not None:
            self.handler.journal.closed = True
        self.handler.upstream.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.admin(scope, receive, send)
            return
        route = find(scope["method"], scope["path"])
        if route is not None:  # a platform's request, from here on a first-party one
            limit = self.handler.settings.max_body_size
            scope, receive, send = await enter(route, scope, receive, send, limit)
        headers = scope[HEADERS] = dict(scope["headers"])
        try:
            origin = self.access.check(scope, headers)
        except APIError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        if origin is not None:
            if is_preflight(scope, headers):
                start = {"type": "http.response.start", "status": 204}
                await send({**start, "headers": Access.preflight(origin, headers)})
                await send({"type": "http.response.body", "body": b""})
                return
            send = with_cors(send, origin)
        if scope["path"].startswith("/v1/"):
            await self.handler(scope, receive, send)
        elif scope["method"] == "HEAD" and scope["path"] in PROBES:
            await self._here(scope, send)
        else:
            await self.admin(scope, receive, send)

    @staticmethod
    async def _here(scope: Scope, send: Send) -> None:
        """Answer a reachability probe (``HEAD`` of one of :data:`PROBES`): 200, no body."""
        started = time.perf_counter()
        headers = [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        log_request(scope, 200, "tapedeck is here", started)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: APIError) -> None:
        """Answer a request the access checks refused, once its body has been read."""
        started = time.perf_counter()
        with contextlib.suppress(APIError):  # too large: refused all the same
            await Incoming.read(scope, receive, self.handler.settings.max_body_size)
        payload, request_id = error_json(exc.status, exc.message, exc.error_type)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"request-id", request_id.encode()),
            *((k.encode(), v.encode()) for k, v in (exc.headers or {}).items()),
        ]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        said = f"{exc.error_type}: {exc.message.removeprefix('tapedeck: ')[:120]}"
        log_request(scope, exc.status, said, started)


def _open_store(handler: Handler) -> None:
    """The server is starting: with a shared journal, this worker answers the other
    workers' reads once its own entries are written (:mod:`..observe.journal_sync`)."""
    if handler.store is None:
        return
    from ..observe.shared_journal import SharedJournal  # only with --state redis://

    if isinstance(handler.journal, SharedJournal):
        handler.journal.start()


async def _close_store(handler: Handler) -> None:
    """The server is stopping: the shared journal's waiting entries are written (for at most
    a second), then the state store's connections are closed."""
    if handler.store is None:
        return
    from ..observe.shared_journal import SharedJournal  # only with --state redis://

    if isinstance(handler.journal, SharedJournal):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await handler.journal.written()
    await handler.store.aclose()


def _upstream_key(settings: Settings) -> str | None:
    name = settings.upstream_api_key_env
    if not name:
        return None
    key = os.environ.get(name)
    if not key:
        raise ConfigError(
            f"--upstream-api-key-env: the environment variable {name} is not set (or empty)"
        )
    return key


def load_library(settings: Settings) -> CassetteLibrary:
    """The cassettes of ``settings``; in the modes that record, the directory is made if it
    does not exist yet (the first recording of a new project creates it), and the log says
    so: a misspelt directory would otherwise go unnoticed until the cassettes are missed."""
    if settings.mode.records and not settings.cassettes.exists():
        near = nearest_directory(settings.cassettes)
        try:
            settings.cassettes.mkdir(parents=True)
        except OSError as exc:
            raise ConfigError(
                f"{settings.cassettes}: cannot create the cassette directory: {exc.strerror or exc}"
            ) from None
        log.info(
            "tapedeck: created cassette directory %s (it did not exist%s)",
            settings.cassettes,
            f"; did you mean {near}?" if near else "",
        )
    cache = settings.index_cache
    directory = (
        cache if isinstance(cache, Path) else default_cache_dir() if cache == "auto" else None
    )
    if isinstance(directory, Path) and _inside(directory, settings.cassettes):
        raise ConfigError(
            f"index_cache: {directory} is inside the cassette directory {settings.cassettes}; "
            "choose a directory outside it (or auto, or off)"
        )
    index = LibraryIndex(settings.cassettes, directory, EventStore(settings.event_cache))
    lazy = settings.load == Loading.LAZY
    library = CassetteLibrary.load(
        settings.cassettes,
        settings.match_rules(),
        index,
        lazy,
        settings.library_max_bytes,
        settings.library_request_max_bytes,
        # One process indexes what the cache vouches for when first needed; workers share
        # what their parent made before forking, so it is made there, once.
        defer=settings.workers <= 1,
    )
    if not lazy:  # lazily, the cache is written when the whole directory is loaded
        index.save(unless_few=True)
    return library


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def create_app(
    settings: Settings,
    library: CassetteLibrary | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Tapedeck:
    """Build the ASGI app. Loads the cassettes unless ``library`` is given; ``transport``
    replaces the HTTP transport to the upstream (e.g. ``httpx.MockTransport``).

    >>> app = create_app(Settings(cassettes=Path("cassettes")))  # doctest: +SKIP
    """
    library = library or load_library(settings)
    if settings.mode.records:
        left = sweep_temporary(settings.cassettes)
        if left:
            log.info(
                "tapedeck: removed %d temporary file(s) a tapedeck stopped mid-write left in %s",
                len(left),
                settings.cassettes,
            )
    config = UpstreamConfig(
        settings.upstream,
        _upstream_key(settings),
        read_timeout=settings.upstream_timeout,
        connect_timeout=settings.upstream_connect_timeout,
        drain_timeout=settings.record_drain_timeout,
        stop_timeout=settings.record_shutdown_timeout,
        form=settings.upstream_form,
    )
    upstream = Upstream(config, transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream.start(connect=settings.mode.proxies)
        _open_store(app.state.handler)
        yield
        await upstream.aclose()
        await _close_store(app.state.handler)

    admin = Starlette(
        lifespan=lifespan,
        routes=ROUTES,
        middleware=[Middleware(RequestLog)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    admin.router.redirect_slashes = False  # `POST /v1` is a 404, not a redirect to `/v1/`
    redactor = Redactor(settings.redact_patterns, settings.redact_headers)
    recorder = Recorder(
        library,
        settings.upstream,
        settings.match_rules(),
        redactor,
        replace_per_run=settings.mode is Mode.ALL,
        record_errors=settings.record_errors,
        before_request=settings.before_record_request,
        before_response=settings.before_record_response,
        kept_test_ids=settings.max_test_ids,
        max_file_size=settings.max_file_size,
    )
    handler = Handler(settings, library, upstream, recorder)
    admin.state.handler = handler
    access = Access(
        settings.host,
        settings.allowed_hosts,
        settings.allowed_origins,
        settings.admin_token,
        settings.upload_paths,
    )
    return Tapedeck(handler, admin, access)
