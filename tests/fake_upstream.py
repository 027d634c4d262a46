"""A fake Anthropic API for the proxy tests: a Starlette app served by uvicorn on a thread.

It answers like the real API (SSE streams with known gaps between events, JSON messages,
count_tokens, models, message batches, error responses with retry headers) and keeps a
record of every request it saw: headers, body, when it started and how it ended
(``complete``, ``dropped`` by the fake itself, or ``cancelled`` because the client — that
is, tapedeck — went away). Tests use that record to prove what tapedeck forwarded and
that it closed upstream requests promptly.

What a ``POST /v1/messages`` gets is chosen by the first word of the last user message:

=============== ==============================================================================
``gate``        stream ``message_start`` and ``content_block_start``, then wait for
                :attr:`FakeUpstream.gate` (a ``threading.Event``) before the rest
``drop``        stream four events, then close the connection mid-body
``dropmid``     stream two events and half of a third, then close the connection
``hang``        stream ``message_start``, then nothing for 30 s
``slowheaders`` wait :data:`SLOW_HEADERS_S` before sending the response headers
``split``       a whole stream with ``\\r\\n`` line ends, cut in 7-byte chunks
``streamerror`` a stream that breaks off with an in-stream ``overloaded_error`` event
``overloaded``  HTTP 529 ``overloaded_error`` with ``retry-after``, ``x-should-retry``
``ratelimit``   HTTP 429 ``rate_limit_error`` with ``retry-after`` and rate-limit headers
``flaky``       529 the first time this exact text is seen, then a normal answer
``secret``      a normal answer whose text also holds :data:`UPSTREAM_SECRET`
``splitsecret`` a streamed answer whose :data:`UPSTREAM_SECRET` is split across two deltas
``refused``     HTTP 401 ``authentication_error``, as the API answers a bad key
anything else   a normal answer: streamed if ``stream`` is true, else one JSON message
=============== ==============================================================================

A normal answer's text is the user's words (joined by single spaces); streamed, each word
is one ``text_delta`` and events are :attr:`FakeUpstream.gap_s` apart, after headers sent
:data:`HEADERS_DELAY_S` after the request arrived. Message ids carry the request's serial
number (``msg_fake_0007``), so a re-recorded cassette differs from the old one.

Every ``/v1/messages`` response carries ``set-cookie``, ``anthropic-organization-id`` and
a ``request-id``, as the real API does; the first two must never reach a cassette.

``python tests/fake_upstream.py`` serves it on its own, for the TypeScript suite: it prints
``fake upstream on http://127.0.0.1:PORT`` and stops when its standard input closes.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

#: Pause between two streamed events, for tests that measure timing (``fake.gap_s = GAP_S``).
GAP_S = 0.03
#: The pause otherwise: short, to keep the suite fast.
QUICK_GAP_S = 0.01
#: Pause between the request and the response headers of a normal answer.
HEADERS_DELAY_S = 0.04
#: How long a ``slowheaders`` answer waits before its headers.
SLOW_HEADERS_S = 1.2
#: How long a ``gate`` stream waits for the test to open the gate.
GATE_TIMEOUT_S = 5.0
#: What the fake sends as secrets: they must never be written to a cassette.
ORGANIZATION_ID = "org-fake-5e5e5e5e-SECRET-ORG"
COOKIE = "_cfuvid=COOKIE-SECRET-abc123; path=/; HttpOnly"
#: A key-shaped string the fake puts in the text of a ``secret`` answer.
UPSTREAM_SECRET = "sk-ant-api03-UPSTREAMLEAK-abc987_Zz"
MODEL = "claude-fake-4-5"

MODELS = [
    {
        "type": "model",
        "id": f"claude-fake-{n}",
        "display_name": f"Claude Fake {n}",
        "created_at": f"2025-0{n}-01T00:00:00Z",
    }
    for n in (1, 2, 3)
]
BATCH_ID = "msgbatch_fake01"


class Drop(Exception):
    """Raised by the fake to make uvicorn close the connection mid-body, on purpose."""


class _HideDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, Drop)


@dataclass
class Seen:
    """One request the fake received, and what became of it."""

    serial: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    header_list: list[tuple[str, str]]
    body: Any
    started: float
    ended: float | None = None
    #: ``open``, ``complete``, ``dropped`` (the fake cut it) or ``cancelled`` (client left).
    outcome: str = "open"
    #: Event names sent so far (for streams).
    sent: list[str] = field(default_factory=list)
    #: For ``gate`` streams: whether the gate was opened in time.
    gate_opened: bool | None = None
    #: When the fake did what it did, on the wall clock (``time.time()``: the clock of the
    #: kernel's receive timestamps, :mod:`stamped`): the request read whole, and the start
    #: of each write (the response headers, each event, the end of the body).
    arrived_at: float = 0.0
    headers_at: float | None = None
    events_at: list[float] = field(default_factory=list)
    end_at: float | None = None

    @property
    def text(self) -> str:
        return last_user_text(self.body)


def last_user_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    b.get("text", "") for b in content if isinstance(b, dict) and "text" in b
                )
    return ""


def sse(event: str, data: Any, eol: str = "\n") -> bytes:
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {event}{eol}data: {payload}{eol}{eol}".encode()


def words_of(text: str) -> list[str]:
    return text.split() or ["(empty)"]


def answer_text(text: str) -> str:
    """The text of the fake's normal answer to a user message ``text``."""
    return " ".join(words_of(text))


def message(serial: int, text: str, model: str = MODEL) -> dict[str, Any]:
    return {
        "id": f"msg_fake_{serial:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": len(text.split())},
    }


def stream_events(serial: int, text: str, model: str = MODEL) -> list[tuple[str, dict[str, Any]]]:
    """The events of a streamed normal answer whose text is ``text``."""
    words = text.split(" ")
    chunks = [w + " " for w in words[:-1]] + [words[-1]]
    start = message(serial, "", model)
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = {"input_tokens": 11, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}},
        )
        for c in chunks
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def ask(text: str, **extra: Any) -> dict[str, Any]:
    """A ``POST /v1/messages`` body for the fake: its first word picks the answer (above)."""
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def tokens(text: str) -> dict[str, Any]:
    """A ``POST /v1/messages/count_tokens`` body for the fake."""
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def event_names(text: str) -> list[str]:
    """The event names of the fake's normal stream answering ``text``."""
    return [name for name, _ in stream_events(0, answer_text(text))]


def split_delta(
    events: list[tuple[str, dict[str, Any]]], secret: str
) -> list[tuple[str, dict[str, Any]]]:
    """``events`` with the text delta that holds ``secret`` split in two in its middle."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, data in events:
        text = data.get("delta", {}).get("text", "") if name == "content_block_delta" else ""
        if secret not in text:
            out.append((name, data))
            continue
        cut = text.index(secret) + len(secret) // 2
        for piece in (text[:cut], text[cut:]):
            out.append((name, {**data, "delta": {"type": "text_delta", "text": piece}}))
    return out


def error_body(kind: str, text: str, serial: int) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": f"req_fake_{serial:04d}",
    }


def batch(base_url: str) -> dict[str, Any]:
    return {
        "id": BATCH_ID,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {
            "processing": 0,
            "succeeded": 1,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "ended_at": "2025-05-01T00:10:00Z",
        "created_at": "2025-05-01T00:00:00Z",
        "expires_at": "2025-05-02T00:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"{base_url}/v1/messages/batches/{BATCH_ID}/results",
    }


def batch_results() -> bytes:
    line = {
        "custom_id": "first",
        "result": {"type": "succeeded", "message": message(0, "batched answer")},
    }
    return (json.dumps(line) + "\n").encode()


class _Out:
    """Sending one response, remembering what went out."""

    def __init__(self, send: Send, seen: Seen, common: list[tuple[str, str]]) -> None:
        self._send = send
        self.seen = seen
        self.common = common

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        given = {k for k, _ in headers}
        pairs = [*headers, *((k, v) for k, v in self.common if k not in given)]
        self.seen.headers_at = time.time()
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in pairs],
            }
        )

    async def chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def event(self, name: str, data: Any) -> None:
        self.seen.events_at.append(time.time())
        await self.chunk(sse(name, data))
        self.seen.sent.append(name)

    async def json(
        self, status: int, data: Any, headers: list[tuple[str, str]] | None = None
    ) -> None:
        body = json.dumps(data).encode()
        await self.start(status, [("content-type", "application/json"), *(headers or [])])
        await self._send({"type": "http.response.body", "body": body})

    async def raw(self, status: int, body: bytes, content_type: str) -> None:
        await self.start(status, [("content-type", content_type)])
        await self._send({"type": "http.response.body", "body": body})

    async def stream_start(self) -> None:
        await self.start(
            200,
            [
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
            ],
        )

    async def end(self) -> None:
        self.seen.end_at = time.time()
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


class FakeUpstream:
    """The fake API on a real socket. Use as a context manager; ``base_url`` is its address."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.gate = threading.Event()
        #: Pause between two streamed events (:data:`QUICK_GAP_S` unless a test sets it).
        self.gap_s = QUICK_GAP_S
        self.changed = threading.Condition()
        self._flaky: set[str] = set()
        self._serial = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/{path:path}", _Endpoint(self), methods=_METHODS)])
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._filter = _HideDrops()

    def _run(self) -> None:
        self.server.run(sockets=[self._sock])

    def __enter__(self) -> FakeUpstream:
        logging.getLogger("uvicorn.error").addFilter(self._filter)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake upstream failed to start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.gate.set()  # release any stream still waiting on it
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        logging.getLogger("uvicorn.error").removeFilter(self._filter)

    def reset(self) -> None:
        """Forget every request (a request still in flight keeps its own record)."""
        with self.changed:
            self.seen = []
            self._serial = 0
            self._flaky.clear()
            self.gate.clear()
            self.gap_s = QUICK_GAP_S

    # --- what tests look at -------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[Seen]:
        with self.changed:
            return [s for s in self.seen if path is None or s.path == path]

    @property
    def count(self) -> int:
        with self.changed:
            return len(self.seen)

    @property
    def open_requests(self) -> list[Seen]:
        with self.changed:
            return [s for s in self.seen if s.outcome == "open"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (called with the lock held) is true; False on timeout."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def wait_ended(self, seen: Seen, timeout: float) -> bool:
        return self.wait_for(lambda: seen.outcome != "open", timeout)

    # --- bookkeeping, called on the server thread ---------------------------------------------

    def _new(self, scope: Scope, body: Any) -> Seen:
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        with self.changed:
            self._serial += 1
            seen = Seen(
                serial=self._serial,
                method=scope["method"],
                path=scope["path"],
                query=parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True),
                headers={k.lower(): v for k, v in pairs},
                header_list=pairs,
                body=body,
                started=time.perf_counter(),
                arrived_at=time.time(),
            )
            self.seen.append(seen)
            self.changed.notify_all()
        return seen

    def _end(self, seen: Seen, outcome: str) -> None:
        with self.changed:
            if seen.outcome == "open":
                seen.outcome = outcome
                seen.ended = time.perf_counter()
            self.changed.notify_all()

    def _first_time(self, text: str) -> bool:
        with self.changed:
            if text in self._flaky:
                return False
            self._flaky.add(text)
            return True


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class _Endpoint:
    """The raw ASGI handler behind the catch-all route."""

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fake = self.fake
        seen = fake._new(scope, body)
        common = [("request-id", f"req_fake_{seen.serial:04d}")]
        if seen.path.startswith("/v1/messages") and not seen.path.startswith(
            "/v1/messages/batches"
        ):
            common += [
                ("anthropic-organization-id", ORGANIZATION_ID),
                ("set-cookie", COOKIE),
                ("anthropic-ratelimit-requests-remaining", "99"),
            ]
        out = _Out(send, seen, common)
        dropped = False
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                fake._end(seen, "cancelled")
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            try:
                await self.dispatch(seen, out)
            except Drop:
                dropped = True
            else:
                fake._end(seen, "complete")
            group.cancel_scope.cancel()
        if dropped:
            fake._end(seen, "dropped")
            raise Drop("the fake upstream drops this connection mid-body")
        fake._end(seen, "cancelled")  # a no-op unless the server itself cancelled the body

    async def dispatch(self, seen: Seen, out: _Out) -> None:
        path, method = seen.path, seen.method
        if path == "/v1/messages" and method == "POST":
            await self.messages(seen, out)
        elif path == "/v1/messages/count_tokens" and method == "POST":
            size = len(json.dumps((seen.body or {}).get("messages", []), sort_keys=True))
            await out.json(200, {"input_tokens": size // 4 + 1})
        elif path == "/v1/models" and method == "GET":
            limit = int(seen.query.get("limit", ["20"])[0])
            data = MODELS[:limit]
            await out.json(
                200,
                {
                    "data": data,
                    "has_more": len(data) < len(MODELS),
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                },
            )
        elif path.startswith("/v1/models/") and method == "GET":
            wanted = path.removeprefix("/v1/models/")
            found = [m for m in MODELS if m["id"] == wanted]
            if found:
                await out.json(200, found[0])
            else:
                await out.json(404, error_body("not_found_error", f"model: {wanted}", seen.serial))
        elif path == "/v1/messages/batches" and method == "POST":
            await out.json(200, batch(self.fake.base_url))
        elif path == "/v1/messages/batches" and method == "GET":
            item = batch(self.fake.base_url)
            await out.json(
                200, {"data": [item], "has_more": False, "first_id": BATCH_ID, "last_id": BATCH_ID}
            )
        elif path == f"/v1/messages/batches/{BATCH_ID}" and method == "GET":
            await out.json(200, batch(self.fake.base_url))
        elif path == f"/v1/messages/batches/{BATCH_ID}/results" and method == "GET":
            await out.raw(200, batch_results(), "application/x-jsonl")
        else:
            await out.json(
                404, error_body("not_found_error", f"no route {method} {path}", seen.serial)
            )

    async def messages(self, seen: Seen, out: _Out) -> None:
        body = seen.body if isinstance(seen.body, dict) else {}
        text = seen.text
        word = text.split()[0] if text.split() else ""
        model = str(body.get("model", MODEL))
        streaming = body.get("stream") is True
        serial = seen.serial
        retry = [("x-should-retry", "true")]
        if word == "overloaded" or (word == "flaky" and self.fake._first_time(text)):
            await anyio.sleep(HEADERS_DELAY_S)
            await out.json(
                529,
                error_body("overloaded_error", "Overloaded", serial),
                [("retry-after", "1"), ("retry-after-ms", "20"), *retry],
            )
            return
        if word == "ratelimit":
            await out.json(
                429,
                error_body("rate_limit_error", "Number of requests has exceeded", serial),
                [
                    ("retry-after", "7"),
                    ("anthropic-ratelimit-requests-limit", "50"),
                    ("anthropic-ratelimit-requests-remaining", "0"),
                    ("anthropic-ratelimit-requests-reset", "2025-05-01T00:00:07Z"),
                    ("x-should-retry", "false"),
                ],
            )
            return
        if word == "refused":
            await out.json(401, error_body("authentication_error", "invalid x-api-key", serial))
            return
        if word == "slowheaders":
            await anyio.sleep(SLOW_HEADERS_S)
        answer = answer_text(text)
        if word in ("secret", "splitsecret"):
            answer = f"{answer} upstream says {UPSTREAM_SECRET}"
        if not streaming:
            await anyio.sleep(HEADERS_DELAY_S)
            await out.json(200, message(serial, answer, model))
            return
        events = stream_events(serial, answer, model)
        if word == "splitsecret":
            events = split_delta(events, UPSTREAM_SECRET)
        if word == "split":
            await out.stream_start()
            wire = b"".join(sse(name, data, "\r\n") for name, data in events)
            for i in range(0, len(wire), 7):
                await out.chunk(wire[i : i + 7])
                await anyio.sleep(0.001)
            seen.sent.extend(name for name, _ in events)
            await out.end()
            return
        gap = self.fake.gap_s
        await anyio.sleep(HEADERS_DELAY_S)
        await out.stream_start()
        for i, (name, data) in enumerate(events):
            if i:
                await anyio.sleep(gap)
            await out.event(name, data)
            if word == "gate" and name == "content_block_start":
                seen.gate_opened = await anyio.to_thread.run_sync(
                    self.fake.gate.wait, GATE_TIMEOUT_S, abandon_on_cancel=True
                )
            elif word == "hang" and name == "message_start":
                await anyio.sleep(30)
            elif word == "drop" and len(seen.sent) == 5:  # start, block start, ping, 2 deltas
                await anyio.sleep(gap)
                raise Drop
            elif word == "dropmid" and len(seen.sent) == 2:
                await anyio.sleep(gap)
                half = sse(*events[2])
                await out.chunk(half[: len(half) // 2])
                await anyio.sleep(gap)
                raise Drop
            elif word == "streamerror" and len(seen.sent) == 4:
                await anyio.sleep(gap)
                await out.event("error", error_body("overloaded_error", "Overloaded", serial))
                break
        await out.end()


def main() -> None:
    """Serve the fake on a free port until standard input closes."""
    with FakeUpstream() as fake:
        print(f"fake upstream on {fake.base_url}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
