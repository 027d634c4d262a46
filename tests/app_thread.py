"""An ASGI app served by uvicorn in a thread, on a free port of 127.0.0.1: the stand-in
upstreams' server (:mod:`platform_standins`, ``clients/standin.py``)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp


class AppThread:
    """``app`` on ``base_url`` between :meth:`start` and :meth:`stop`; ``config`` goes to
    :class:`uvicorn.Config` (no logging, no lifespan unless given)."""

    def __init__(self, app: ASGIApp, name: str, **config: Any) -> None:
        self.name = name
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        options: dict[str, Any] = {
            "log_config": None,
            "access_log": False,
            "lifespan": "off",
            "interface": "asgi3",
        }
        self.server = uvicorn.Server(uvicorn.Config(app, **(options | config)))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        """Serve, and return once the server is listening (10 s at most)."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
