"""Calling tapedeck's ``/v1/`` handler in-process, without sockets (bench/handler_cost.py,
bench/miss_cost.py): the ASGI scope and ``receive`` of the bench request with a body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


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
