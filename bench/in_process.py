"""Calling tapedeck's ``/v1/`` handler in-process, without sockets (bench/handler_cost.py,
bench/miss_cost.py): the app over the bench cassette, and the ASGI scope and ``receive`` of
the bench request with a body."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_cassette import make_cassette


def bench_app(prefix: str, **settings: Any) -> Any:
    """tapedeck's app over the bench cassette (in a new folder named from ``prefix``), at
    ``instant`` timing with ``settings``, its request log on as ``tapedeck serve`` has it,
    written to /dev/null."""
    from tapedeck.config import Settings
    from tapedeck.server.app import create_app
    from tapedeck.server.logs import configure_logging
    from tapedeck.shaping.timing import Timing

    configure_logging()
    handler = logging.getLogger("tapedeck").handlers[0]
    handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115
    root = Path(tempfile.mkdtemp(prefix=prefix))
    make_cassette(root / "bench.yaml", 20.0)
    return create_app(Settings(cassettes=root, timing=Timing.parse("instant"), **settings))


def bench_request(
    body: bytes,
) -> tuple[dict[str, Any], Callable[[], Awaitable[dict[str, object]]]]:
    """``(scope, receive)`` of ``POST /v1/messages`` with ``body``, as uvicorn hands them on."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"anthropic-version", b"2023-06-01"),
        (b"x-api-key", b"test"),
        (b"content-length", str(len(body)).encode()),
        (b"user-agent", b"bench"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive
