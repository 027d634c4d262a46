"""The baseline for bench/replay.py: a bare ASGI app sending the cassette's pre-rendered bytes.

It serves every request with the first interaction of one cassette, rendered by
``stream_bytes`` to exactly the bytes (and the headers) tapedeck sends. There is no
routing, matching, middleware or logging: what is left is the cost of uvicorn itself.

- ``instant``: read the request body, send the headers, then the whole body in one send.
- ``recorded``: send each event at its absolute deadline (arrival + ``at_ms``, on
  ``time.perf_counter``), one send per event, sleeping with ``asyncio.sleep`` in between.

It runs on uvicorn with the same settings as tapedeck
(``tapedeck.server.runner.uvicorn_config``) on a socket bound the same way, and logs its
address on stderr the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

from stream_bytes import load

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, as tapedeck binds one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_app(cassette: Path, mode: str) -> Callable[[Message, Receive, Send], Awaitable[None]]:
    stream = load(cassette)
    start = {"type": "http.response.start", "status": stream.status, "headers": stream.headers}
    whole = {"type": "http.response.body", "body": stream.payload, "more_body": False}
    last = len(stream.events) - 1
    parts = [
        ({"type": "http.response.body", "body": data, "more_body": i < last}, at / 1000)
        for i, (data, at) in enumerate(stream.events)
    ]
    ready = {"type": "http.response.start", "status": 200, "headers": []}

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        if scope["method"] != "POST":  # readiness probe
            await send(ready)
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if mode == "instant":
            await send(start)
            await send(whole)
            return
        # Deadlines on perf_counter: uvloop's loop.time() is cached at 1 ms resolution.
        started = time.perf_counter()
        await send(start)
        for message, at in parts:
            delay = started + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(message)

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cassette", type=Path, required=True, help="the cassette file")
    parser.add_argument("--mode", choices=["instant", "recorded"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(f"bare app on http://{host}:{port}, timing {args.mode}", file=sys.stderr, flush=True)
    # The same per-request settings as tapedeck.server.runner.uvicorn_config; loop and http are left
    # on "auto", as there, so both pick uvloop and httptools when they are installed. Only
    # lifespan differs: this app has nothing to start, and it runs once, before any request.
    config = uvicorn.Config(
        make_app(args.cassette, args.mode),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
