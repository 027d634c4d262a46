"""Running the app on uvicorn: from the command line (:func:`run`), on a thread
(:class:`ServerThread`), or for a ``with`` block in another program (:func:`serve`).

The socket is bound before uvicorn starts so that the start line can give the real
address (``--port 0`` picks a free port) and a port already in use is a one-line error.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from ..cassette.library import CassetteLibrary
from ..config import Settings, from_file, from_keywords, resolve
from ..errors import ConfigError
from ..shaping.faults import Fault
from ..shaping.timing import Timing
from .access import is_loopback
from .allocator import return_large_blocks
from .app import Tapedeck, create_app, load_library
from .binding import bind
from .http_protocol import protocol_class
from .logs import configure_logging, install_cut_filter, log
from .workers import supervise

if TYPE_CHECKING:
    import httpx


def uvicorn_config(
    settings: Settings,
    library: CassetteLibrary,
    transport: httpx.AsyncBaseTransport | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration tapedeck runs with (shared by the CLI and the tests)."""
    return uvicorn.Config(
        create_app(settings, library, transport),
        http=protocol_class(
            settings.max_client_buffer, settings.write_timeout, settings.max_header_size
        ),
        h11_max_incomplete_event_size=settings.max_header_size,
        log_config=None,
        access_log=False,
        server_header=False,
        # tapedeck never looks at client addresses: no X-Forwarded-* rewriting needed.
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_shutdown(settings),
    )


#: How long a stopping server waits for the responses in flight, recordings aside.
GRACEFUL_S = 2
#: What uvicorn waits past record_shutdown_timeout: time for the recordings abandoned then
#: to be cut and logged (:mod:`tapedeck.wire.drain`) before uvicorn cancels what is left.
ABANDON_S = 1


def graceful_shutdown(settings: Settings) -> int:
    """Seconds uvicorn waits, once told to stop, for the responses in flight to end: in the
    modes that record, long enough for answers being recorded to finish and be written
    (``record_shutdown_timeout``), or be abandoned; otherwise :data:`GRACEFUL_S`."""
    if not settings.mode.records:
        return GRACEFUL_S
    return max(GRACEFUL_S, math.ceil(settings.record_shutdown_timeout) + ABANDON_S)


def run(settings: Settings) -> None:
    """Load the cassettes, bind, print the start line and serve until interrupted.

    Raises :class:`~tapedeck.errors.LibraryError`, :class:`~tapedeck.errors.ConfigError`
    or :class:`BindError` before serving.
    """
    configure_logging()
    check_workers(settings)
    return_large_blocks()  # the serving process's own allocator; workers inherit it
    # What start-up makes (the library, the app) lives as long as the server: the cycle
    # collector is paused while it is made, then it is kept out of the collector's sight
    # for good, so that no full collection walks it (6-9 ms with the imports alone, a
    # stall delaying every timed event due meanwhile; one over 5,000 cassettes, far more),
    # and forked workers keep sharing its pages.
    gc.disable()
    try:
        library = load_library(settings)
        server = _Server(uvicorn_config(settings, library))
    finally:
        gc.freeze()
        gc.enable()
    # The same for cassettes whose index entries the cache vouched for, made when a request
    # first needs them all (what that request had in flight is kept out too: at most one
    # request's worth, once).
    library.when_whole(gc.freeze)
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "tapedeck %s mode on http://%s:%d, %d cassettes from %s, timing %s%s",
        settings.mode,
        shown,
        port,
        len(library),
        settings.cassettes,
        settings.timing,
        f", {settings.workers} workers" if settings.workers > 1 else "",
    )
    if not settings.admin_token and not is_loopback(settings.host):
        log.info(
            "tapedeck: the admin API (/_tapedeck/*, health aside) is off: tapedeck listens "
            "beyond this machine without an admin token (set TAPEDECK_ADMIN_TOKEN to use it)"
        )
    if settings.workers > 1:
        supervise(settings.workers, lambda: server.run(sockets=[sock]), sock)
    else:
        server.run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, ending the live journal streams when told to stop (SIGTERM,
    Ctrl-C): otherwise it would wait its graceful-shutdown timeout for them. Answers being
    recorded get ``record_shutdown_timeout`` to finish (:func:`graceful_shutdown`)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.app
        if isinstance(app, Tapedeck):
            app.close()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # uvicorn then raises the signal it was stopped with again, which ends the process
        # before logging's own flush at exit: the last lines (what became of the recordings
        # in flight) would be lost.
        for handler in log.handlers:
            handler.flush()


def check_workers(settings: Settings) -> None:
    """:class:`ConfigError` unless ``workers`` can work with the other settings."""
    if settings.workers == 1:
        return
    if settings.state == "memory":
        raise ConfigError(
            f"workers: {settings.workers} workers need shared state: give --state "
            "redis://HOST:PORT/DB (sequence positions and fault counters must be the same "
            "whichever worker answers), or --workers 1"
        )
    if settings.mode.records:
        raise ConfigError(
            f"workers: mode {settings.mode} writes cassettes, which one process must do; "
            "record with --workers 1, then replay with several"
        )


class ServerThread:
    """A real tapedeck server on a background thread, for tests and embedding.

    >>> with ServerThread(Settings(cassettes=Path("cassettes"), port=0)) as server:
    ...     anthropic.Anthropic(base_url=server.base_url, api_key="test")
    """

    def __init__(
        self,
        settings: Settings,
        library: CassetteLibrary | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.library = library or load_library(settings)
        self.server = uvicorn.Server(uvicorn_config(settings, self.library, transport))
        self._sock = bind(settings.host, settings.port)
        host, port = self._sock.getsockname()[:2]
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self._thread = threading.Thread(target=self._run, name="tapedeck-server", daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self._sock])

    def start(self) -> ServerThread:
        install_cut_filter()
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("tapedeck server thread failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        app = self.server.config.app
        if isinstance(app, Tapedeck):
            app.close()
        self.server.should_exit = True
        # As long as uvicorn may wait for recordings in flight (graceful_shutdown), and more.
        self._thread.join(timeout=graceful_shutdown(self.settings) + 8)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def serve(
    cassettes: str | os.PathLike[str] | None = None,
    *,
    mode: str | None = None,
    timing: str | Timing | None = None,
    faults: str | list[str] | tuple[str | Fault, ...] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    config: str | os.PathLike[str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> Iterator[ServerThread]:
    """Run a real tapedeck server (uvicorn, on a background thread) for the ``with`` block.

    ``cassettes`` is the cassette directory (default ``./cassettes``), ``mode`` one of
    ``replay`` (default), ``record``, ``auto``, ``passthrough``, ``timing`` a timing spec
    (``recorded`` by default, ``instant``, ``speed=F``, ``fixed=MS``), ``faults`` server-wide
    fault specs (docs/faults.md). ``port=0`` (the default here) picks a free port: read the
    address from ``server.base_url``. Any other keyword is a setting of the same name
    (``sequence_end="error"``, ``match_headers="anthropic-beta,x-tenant"``, ``upstream=...``);
    ``config`` reads a tapedeck.yaml file, and the keywords win over it (``host`` and ``port``
    always do). The environment is not read. ``transport`` replaces the HTTP transport to
    the upstream (e.g. an ``httpx.MockTransport`` standing in for the API).

    Raises :class:`~tapedeck.errors.ConfigError` for an invalid setting (naming it, e.g.
    ``serve(timing=...)``), :class:`~tapedeck.errors.LibraryError` for a missing directory
    or a broken cassette and :class:`~tapedeck.errors.BindError` if the address cannot be
    bound, all before the block runs. The server stops when the block ends.

    >>> import anthropic, tapedeck
    >>> with tapedeck.serve(cassettes="cassettes", timing="instant") as server:
    ...     with anthropic.Anthropic(base_url=server.base_url, api_key="test") as client:
    ...         with client.messages.stream(
    ...             model="claude-sonnet-4-5", max_tokens=256,
    ...             messages=[{"role": "user", "content": "Hello"}],
    ...         ) as stream:
    ...             print(stream.get_final_text())
    Hello!
    """
    keywords: dict[str, Any] = {
        "cassettes": cassettes,
        "mode": mode,
        "timing": timing,
        "faults": faults,
        "host": host,
        "port": port,
        **settings,
    }
    layers = [from_keywords(keywords)]
    if config is not None:
        layers.append(from_file(Path(config)))
    with ServerThread(resolve(*layers), transport=transport) as server:
        yield server
