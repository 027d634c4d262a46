"""Running the app on uvicorn: bind first, then announce, then serve.

The socket is bound before uvicorn starts so that the start line can give the real
address (``--port 0`` picks a free port) and a port already in use is a one-line error.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from .app import create_app
from .library import CassetteLibrary
from .logs import configure_logging, install_cut_filter, log
from .settings import Settings


class BindError(Exception):
    """The address could not be bound (in use, not local, not permitted)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(settings: Settings, library: CassetteLibrary) -> uvicorn.Config:
    """The uvicorn configuration tapedeck runs with (shared by the CLI and the tests)."""
    return uvicorn.Config(
        create_app(settings, library),
        log_config=None,
        access_log=False,
        server_header=False,
        # tapedeck never looks at client addresses: no X-Forwarded-* rewriting needed.
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )


def serve(settings: Settings) -> None:
    """Load the cassettes, bind, print the start line and serve until interrupted.

    Raises :class:`~tapedeck.library.LibraryError`, :class:`~tapedeck.settings.ConfigError`
    or :class:`BindError` before serving.
    """
    configure_logging()
    library = CassetteLibrary.load(settings.cassettes, settings.match_rules())
    server = uvicorn.Server(uvicorn_config(settings, library))
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "tapedeck %s mode on http://%s:%d, %d cassettes from %s, timing %s",
        settings.mode,
        shown,
        port,
        len(library),
        settings.cassettes,
        settings.timing,
    )
    server.run(sockets=[sock])


class ServerThread:
    """A real tapedeck server on a background thread, for tests and embedding.

    >>> with ServerThread(Settings(cassettes=Path("cassettes"), port=0)) as server:
    ...     anthropic.Anthropic(base_url=server.base_url, api_key="test")
    """

    def __init__(self, settings: Settings, library: CassetteLibrary | None = None) -> None:
        self.settings = settings
        self.library = library or CassetteLibrary.load(settings.cassettes, settings.match_rules())
        self.server = uvicorn.Server(uvicorn_config(settings, self.library))
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
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
