"""A stand-in Anthropic API for the framework tests, on a real socket, that can fail as the
API fails.

It answers ``POST /v1/messages`` as the API would, streamed (``stream: true``) or as one JSON
message:

- a conversation whose last user turn holds ``tool_result`` blocks gets the final text, which
  quotes the results (``Done: ...``), ``stop_reason: end_turn``;
- a request with ``tools`` otherwise gets a short text and one ``tool_use`` of its first
  tool, each required string property of its schema set to ``"Paris"``,
  ``stop_reason: tool_use``;
- anything else gets ``Stand-in answer to: <the user's words>``, one text delta per word.

A stream is the API's: ``message_start``, ``content_block_start``, a ``ping``, the deltas,
``content_block_stop``, ``message_delta``, ``message_stop``. Message ids carry the request's
serial number, so a replay that answered from the stand-in's second request would show it.

The stand-in reads the ``x-tapedeck-fault`` header itself and fails the way the API fails —
not through tapedeck's code — so that a test can compare what a framework sees from tapedeck's
fault with what it sees from an upstream that really breaks. It knows each kind of
docs/faults.md with the keys the framework tests use: ``ping:every``, ``error:after,type,
message``, ``overloaded:after``, ``disconnect:after``, ``truncate:after``, ``status:code,
retry_after,retry_after_ms,should_retry,times``, ``latency:ms``, ``stall:after,ms``,
``garble:after``, ``quota:requests=N/60s``. Counting is by the stream's events, its ``ping``
included, as tapedeck counts.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from app_thread import AppThread

#: Error types by status, and the API's usual message for each (as tapedeck's wire/errors.py).
ERROR_TYPES = {400: "invalid_request_error", 429: "rate_limit_error", 529: "overloaded_error"}
MESSAGES = {
    "overloaded_error": "Overloaded",
    "rate_limit_error": "Rate limited",
    "api_error": "Internal server error",
}


class Drop(Exception):
    """Raised mid-body so that uvicorn closes the connection without ending the body."""


def parse_fault(spec: str) -> tuple[str, dict[str, str]]:
    """``"stall:after=3,ms=800"`` -> ``("stall", {"after": "3", "ms": "800"})``."""
    kind, _, rest = spec.strip().partition(":")
    keys = dict(part.split("=", 1) for part in rest.split(",") if part.strip())
    return kind.strip().lower(), {k.strip(): v.strip() for k, v in keys.items()}


def _sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _garbled(name: str, data: Any) -> bytes:
    text = json.dumps(data, separators=(",", ":"))
    return f"event: {name}\ndata: {text[: len(text) // 2]}\n\n".encode()


def _error(kind: str, message: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    """The API's error body; an HTTP error's names its request, as the API's does."""
    said = {"type": kind, "message": message or MESSAGES.get(kind, kind)}
    return {"type": "error", "error": said, **({"request_id": request_id} if request_id else {})}


def _user_blocks(body: dict[str, Any]) -> list[Any]:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return [{"type": "text", "text": content}] if isinstance(content, str) else content
    return []


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content)


def _tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    schema = tool.get("input_schema") or {}
    props = schema.get("properties") or {}
    return {
        name: "Paris"
        for name in schema.get("required") or list(props)
        if (props.get(name) or {}).get("type", "string") == "string"
    }


def content_for(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop reason the stand-in answers ``body`` with."""
    blocks = _user_blocks(body)
    results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    if results:
        said = "; ".join(_result_text(b) for b in results)
        return [{"type": "text", "text": f"Done: {said}"}], "end_turn"
    tools = [t for t in body.get("tools") or [] if "input_schema" in t]
    if tools:
        tool = tools[0]
        call = {"type": "tool_use", "id": "toolu_standin_1", "name": tool["name"]}
        return [
            {"type": "text", "text": "Let me look."},
            {**call, "input": _tool_input(tool)},
        ], "tool_use"
    words = " ".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict)).split()
    return [{"type": "text", "text": "Stand-in answer to: " + " ".join(words)}], "end_turn"


def message(serial: int, body: dict[str, Any]) -> dict[str, Any]:
    """The whole message the stand-in answers ``body`` with, as its ``serial``th request."""
    content, stop = content_for(body)
    return {
        "id": f"msg_standin_{serial:04d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "m"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7},
    }


def events(whole: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The API's stream for the message ``whole``."""
    start = {**whole, "content": [], "stop_reason": None, "usage": {**whole["usage"]}}
    start["usage"]["output_tokens"] = 1
    out: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for i, block in enumerate(whole["content"]):
        if block["type"] == "text":
            empty: dict[str, Any] = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            deltas = [{"type": "text_delta", "text": w + " "} for w in words[:-1]]
            deltas.append({"type": "text_delta", "text": words[-1]})
        else:
            empty = {**block, "input": {}}
            raw = json.dumps(block["input"])
            half = len(raw) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": p} for p in (raw[:half], raw[half:])
            ]
        out.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": empty},
            )
        )
        if i == 0:
            out.append(("ping", {"type": "ping"}))
        out += [
            ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
            for d in deltas
        ]
        out.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta = {"stop_reason": whole["stop_reason"], "stop_sequence": None}
    out.append(
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 7}})
    )
    out.append(("message_stop", {"type": "message_stop"}))
    return out


class StandIn:
    """The stand-in API on ``base_url``; ``with StandIn() as api: ...``. ``bodies`` holds
    every request body it was sent, ``fault_requests`` how many carried each fault spec."""

    def __init__(self, stop_delay_s: float = 0.0) -> None:
        #: The pause before a stream's ``message_stop``: the API's comes a little after the
        #: ``message_delta``, and a client that leaves in between must not cost the recording.
        self.stop_delay_s = stop_delay_s
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fault_requests: dict[str, int] = {}
        #: Per request serial (1, 2, ...): the events sent (``event:`` names), and for a
        #: client that left before the response ended, the events sent by then.
        self.sent: dict[int, list[str]] = {}
        self.left: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        # A latency or stall still waiting is cut short at stop.
        self._served = AppThread(self._app, "the stand-in API", timeout_graceful_shutdown=0.1)
        self.base_url = self._served.base_url

    def __enter__(self) -> StandIn:
        self._served.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._served.stop()

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            got = await receive()
            raw += got.get("body", b"")
            if not got.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["method"] == "HEAD" or scope["path"] != "/v1/messages":
            await _json(send, 404, _error("not_found_error", f"no route {scope['path']}"))
            return
        body = json.loads(raw)
        spec = headers.get("x-tapedeck-fault", "")
        with self._lock:
            self.bodies.append(body)
            self.headers.append(headers)
            serial = len(self.bodies)
            seen = self.fault_requests[spec] = self.fault_requests.get(spec, 0) + 1
        sent = self.sent[serial] = []

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.left[serial] = list(sent)

        async def counted(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and message.get("more_body"):
                sent.append(message["body"].split(b"\n", 1)[0].removeprefix(b"event: ").decode())

        watcher = asyncio.create_task(watch())
        try:
            await self._answer(counted, body, serial, spec, seen)
        finally:
            watcher.cancel()

    async def _answer(
        self, send: Any, body: dict[str, Any], serial: int, spec: str, seen: int
    ) -> None:
        kind, keys = parse_fault(spec) if spec else ("", {})
        request_id = f"req_standin_{serial:04d}"
        base = [(b"request-id", request_id.encode())]
        if kind == "latency":
            await asyncio.sleep(int(keys["ms"]) / 1000)
        if kind == "status" and seen <= int(keys.get("times", "1000000")):
            code = int(keys["code"])
            extra = [
                (f"retry-{k.split('_', 1)[1]}".encode(), keys[k].encode())
                for k in ("retry_after", "retry_after_ms")
                if k in keys
            ]
            if "should_retry" in keys:
                extra.append((b"x-should-retry", keys["should_retry"].encode()))
            await _json(
                send,
                code,
                _error(ERROR_TYPES.get(code, "api_error"), keys.get("message"), request_id),
                base + extra,
            )
            return
        if kind == "quota":
            limit = int(keys["requests"].split("/")[0])
            left = max(limit - seen, 0)
            quota = [
                (b"anthropic-ratelimit-requests-limit", str(limit).encode()),
                (b"anthropic-ratelimit-requests-remaining", str(left).encode()),
            ]
            if seen > limit:
                said = f"This request would exceed your organization's rate limit of {limit}"
                refusal = _error("rate_limit_error", f"{said} requests per minute", request_id)
                await _json(send, 429, refusal, base + quota + [(b"retry-after", b"60")])
                return
            base += quota
        whole = message(serial, body)
        if not body.get("stream"):
            await _json(send, 200, whole, base)
            return
        head = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": base + head})
        after = int(keys.get("after", "0"))
        every = int(keys.get("every", "0"))
        garble_due = kind == "garble"
        for count, (name, data) in enumerate(events(whole)):
            if count == after:
                if kind in ("error", "overloaded"):
                    error_type = keys.get("type", "overloaded_error")
                    await _chunk(send, _sse("error", _error(error_type, keys.get("message"))))
                    break
                if kind == "truncate":
                    break
                if kind == "disconnect":
                    raise Drop("the stand-in cuts the connection, as a failing upstream does")
                if kind == "stall":
                    await asyncio.sleep(int(keys["ms"]) / 1000)
            if name == "message_stop" and self.stop_delay_s:
                await asyncio.sleep(self.stop_delay_s)
            if garble_due and count >= after and name != "ping":
                garble_due = False
                await _chunk(send, _garbled(name, data))
            else:
                await _chunk(send, _sse(name, data))
            if every and (count + 1) % every == 0:
                await _chunk(send, _sse("ping", {"type": "ping"}))
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _chunk(send: Any, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _json(
    send: Any, status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})
