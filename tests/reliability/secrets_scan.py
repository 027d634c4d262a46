"""The secrets scan: every record path, with API keys where clients and the API put them,
and no key in any cassette file, file name or log line.

Each :data:`ROWS` entry is one case: the mode, how the client authenticates, where else
its request carries a key, and what the upstream answers (with a key in it, or not). A
real server records through an ``httpx.MockTransport`` upstream; then every file under the
cassette directory (its text, and its text with percent-escapes and ``\\uXXXX`` escapes
decoded, and every recorded event's text joined up), every file name and every log line
is searched for the key's distinctive part. A new case is one more row. The platform rows
(:mod:`.platform_secrets`) record through a platform in its own form, with its credential.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import yaml

from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing
from tapedeck.source.platform_form import UpstreamForm
from worker_server import free_port

from . import cassettes, platform_secrets, state_store
from .outcome import Outcome


@dataclass(frozen=True)
class Row:
    """One record path: ``request`` places the key in the request, ``reply`` in the answer."""

    name: str
    mode: str = "all"
    #: ``x-api-key``, ``bearer``, or a platform's credential
    #: (:data:`~.platform_secrets.PLATFORM_AUTH`: then the request is that platform's).
    auth: str = "x-api-key"
    #: Where the request carries the key besides its auth header: see :func:`_request`.
    request: str = ""
    #: What the upstream answers: see :func:`_reply`.
    reply: str = "stream"
    #: The key is the password of the state store (``--state redis://:KEY@...``), which
    #: is then stopped: the answers and health while it is gone are scanned too.
    store: bool = False


ROWS: tuple[Row, ...] = (
    Row("x-api-key, streamed answer", auth="x-api-key"),
    Row("authorization: Bearer, streamed answer", auth="bearer"),
    Row("x-api-key, JSON answer", reply="json"),
    Row("Bearer, JSON answer", auth="bearer", reply="json"),
    Row("key in the request body", request="body"),
    Row("key in the request body, JSON answer", auth="bearer", request="body", reply="json"),
    Row("key in the query", request="query"),
    Row("key in a recorded request header", request="header", reply="json"),
    Row("key in the streamed answer", reply="stream-key"),
    Row("key in the JSON answer", reply="json-key"),
    Row("key in an upstream error", reply="error-key"),
    Row("new_episodes records a miss", mode="new_episodes", auth="bearer", request="body"),
    Row("once records a new cassette", mode="once", request="query", reply="stream-key"),
    Row("passthrough writes nothing", mode="passthrough", request="query", reply="stream-key"),
    Row("JSON-escaped key in the body", request="body-escaped"),
    Row("percent-encoded key in the query", request="query-percent"),
    Row("key in the path", request="path", reply="json"),
    Row("percent-encoded key in the path", request="path-percent", reply="json"),
    Row("key split across stream deltas", reply="stream-split"),
    Row("escaped key inside a tool's partial JSON", reply="stream-escaped"),
    Row("Bedrock SigV4 re-signed, streamed (event stream)", auth="bedrock-sigv4"),
    Row("Bedrock SigV4 re-signed, JSON answer", auth="bedrock-sigv4", reply="json"),
    Row("Bedrock API key (bearer)", auth="bedrock-key"),
    Row("Mantle SigV4 re-signed", auth="mantle-sigv4", reply="json"),
    Row("Vertex Google bearer token, streamed", auth="google-bearer"),
    Row("Foundry api-key", auth="foundry-key"),
    Row("state store URL with a password, up and then gone", store=True),
)


def key_for(n: int) -> tuple[str, str]:
    """A key, and the part of it no other text has."""
    core = f"ROW{n:02d}LEAKCHECK{n * 7919 % 9973:04d}zQ"
    return f"sk-ant-api03-{core}", core


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if c in "-_" else c for c in text)


def _request(row: Row, key: str) -> tuple[str, str, dict[str, str], bytes]:
    """``(method, path, headers, body)`` of the client's request for ``row``."""
    if row.auth in platform_secrets.PLATFORM_AUTH:
        core = key.removeprefix("sk-ant-api03-")
        stream = row.reply.startswith("stream")
        return "POST", *platform_secrets.request(row.auth, core, stream)
    auth = {"x-api-key": key} if row.auth == "x-api-key" else {"authorization": f"Bearer {key}"}
    headers = {**auth, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    body: dict[str, Any] = cassettes.ask(
        f"secret row {row.name}", stream=row.reply.startswith("stream")
    )
    method, path = "POST", "/v1/messages"
    where = row.request
    if where == "body":
        body["system"] = f"use {key} for the tool"
    elif where == "query":
        path += f"?note={key}"
    elif where == "query-percent":
        path += f"?note={quote(key, safe='')}"
    elif where == "header":
        headers["anthropic-beta"] = f"tools-2024,{key}"
    elif where in ("path", "path-percent"):
        method, path, body = (
            "GET",
            "/v1/models/" + (key if where == "path" else quote(key, safe="")),
            {},
        )
    raw = json.dumps(body).encode() if body else b""
    if where == "body-escaped":
        body["system"] = "KEY"
        raw = json.dumps(body).encode().replace(b"KEY", _escaped(key).encode())
    return method, path, headers, raw


def _sse(events: list[dict[str, Any]]) -> bytes:
    return cassettes.wire_bytes(events)


def _reply(row: Row, key: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        extra = {"request-id": "req_up", "anthropic-organization-id": f"org-{key}"}
        if request.url.path.startswith("/v1/models/"):
            model = {"type": "model", "id": "m", "display_name": "M", "created_at": "2025"}
            return httpx.Response(200, json=model, headers=extra)
        kind = row.reply
        if kind in ("json", "json-key"):
            text = f"here: {key}" if kind == "json-key" else "plain answer"
            message = {
                "id": "msg_up",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 2},
            }
            return httpx.Response(200, json=message, headers=extra)
        if kind == "error-key":
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": f"bad key {key}"},
            }
            return httpx.Response(400, json=error, headers=extra)
        if kind == "stream-escaped":
            events = cassettes.message_events(["ok"], 0)
            tool = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {
                    "type": "input_json_delta",
                    "partial_json": '{"k": "' + _escaped(key) + '"}',
                },
            }
            events.insert(3, {"event": "content_block_delta", "data": tool, "at_ms": 0})
        else:
            texts = {
                "stream": ["plain", " text"],
                "stream-key": [f"key {key}"],
                "stream-split": [f"key {key[:14]}", key[14:]],
            }[kind]
            events = cassettes.message_events(texts, 0)
        return httpx.Response(
            200, content=_sse(events), headers={**extra, "content-type": "text/event-stream"}
        )

    return answer


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


_UNICODE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _readings(text: str) -> list[str]:
    """``text`` and what it says once escapes are undone, and its events' text joined."""
    readings = [text, unquote(text), _UNICODE.sub(lambda m: chr(int(m[1], 16)), text)]
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return readings
    pieces: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k in ("text", "partial_json", "thinking"):
                if isinstance(value.get(k), str):
                    pieces.append(value[k])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(document)
    joined = "".join(pieces)
    return [*readings, joined, _UNICODE.sub(lambda m: chr(int(m[1], 16)), joined)]


def _shows(core: str, readings: list[str]) -> bool:
    # A key redacted only in part (its start matched, the rest did not) leaves its end.
    fragments = (core, core[:10], core[-10:])
    return any(f in r for f in fragments for r in readings)


def scan(root: Path, lines: list[str], core: str) -> list[str]:
    """Where ``core`` (or its first or last ten characters) shows: files (any reading),
    file names, log lines."""
    found = []
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if _shows(core, [name, unquote(name)]):
            found.append(f"file name {name}")
        if path.is_file() and _shows(core, _readings(path.read_text("utf-8", "replace"))):
            found.append(f"file {name}")
    found += [f"log line {line[:100]!r}" for line in lines if _shows(core, [line, unquote(line)])]
    return found


def check_row(n: int, row: Row) -> tuple[int, list[str]]:
    """Record ``row``; return the status the client got and where the key leaked."""
    key, core = key_for(n)
    platform = row.auth in platform_secrets.PLATFORM_AUTH
    handler = _Lines()
    loggers = [logging.getLogger(name) for name in ("tapedeck", "uvicorn", "uvicorn.error")]
    store = state_store.Redis(free_port(), password=core) if row.store else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(
            cassettes=root,
            port=0,
            mode=Mode(row.mode),
            timing=Timing.parse("instant"),
            upstream_form=UpstreamForm.PLATFORM if platform else UpstreamForm.AUTO,
            state=f"redis://:{core}@127.0.0.1:{store.port}/0" if store else "memory",
        )
        upstream = platform_secrets.reply(row.auth, core) if platform else _reply(row, key)
        for logger in loggers:
            logger.addHandler(handler)
        level = loggers[0].level
        loggers[0].setLevel(logging.INFO)
        try:
            if store is not None:
                store.start()
            with (
                platform_secrets.aws_environment(core),
                ServerThread(settings, transport=httpx.MockTransport(upstream)) as server,
            ):
                method, path, headers, body = _request(row, key)
                with httpx.Client(base_url=server.base_url, timeout=10) as http:
                    response = http.request(method, path, headers=headers, content=body)
                    response.read()
                    if store is not None:  # gone: what the answers and health say
                        store.kill()
                        for _ in range(2):
                            again = http.request(method, path, headers=headers, content=body)
                            handler.lines.append(f"answer {again.status_code} {again.text}")
                        health = http.get("/_tapedeck/health")
                        handler.lines.append(f"health {health.status_code} {health.text}")
                time.sleep(0.1)  # the recording's log line
        finally:
            if store is not None:
                store.stop()
            for logger in loggers:
                logger.removeHandler(handler)
            loggers[0].setLevel(level)
        return response.status_code, scan(root, handler.lines, core)


def run(full: bool, src: Path | None = None) -> Outcome:
    """Every row (the same in the short and the full run: each is one recording)."""
    outcome = Outcome("secrets")
    started = time.perf_counter()
    clean = 0
    for n, row in enumerate(ROWS):
        status, leaks = check_row(n, row)
        clean += not leaks
        outcome.check(not leaks, f"{row.name}: key found in {leaks[:3]} (client got {status})")
    outcome.figure("record paths checked", f"{len(ROWS)}, {clean} clean")
    outcome.seconds = time.perf_counter() - started
    return outcome
