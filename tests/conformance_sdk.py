"""One step of the conformance table made with the Python SDK, and what the SDK showed.

It uses only the SDK's public API and the HTTP library under it (``httpx2`` for 2.x, ``httpx``
before, found from ``anthropic.DefaultHttpxClient``), so it runs against every release the
project supports: the newest in ``.venv`` and the floor in ``.venv-floor``. A step is made
with the client of the platform it runs on (``anthropic.Anthropic``, ``AnthropicBedrock``,
``AnthropicVertex``, ... — tests/platform_clients.py), pointed at tapedeck as its users would.

:func:`raises_like` gives other tests the table's word on what the installed SDK raises for a
cut stream (:data:`CUT`) or a stall (:data:`STALL`).
"""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx
import pytest

from conformance_table import FIRST_PARTY, Case, Step, expectation
from platform_clients import TABLE_CLIENTS
from tapedeck.wire.eventstream import CONTENT_TYPE as EVENTSTREAM
from tapedeck.wire.eventstream import EventStreamDecoder, chunk_event

#: How long any step may wait for a read unless its case says otherwise: a hang fails fast.
DEFAULT_TIMEOUT_S = 10.0
#: The installed SDK release, which picks the table's entries for it.
RELEASE: str = anthropic.__version__
#: The HTTP library the installed SDK is built on, whose errors it may let through.
TRANSPORT = importlib.import_module(
    anthropic.DefaultHttpxClient.__mro__[1].__module__.partition(".")[0]
)
#: The table's cases for a connection cut mid-stream and for a stream that stalls past the
#: client's read timeout, in the raw iterator (``messages.create(stream=True)``).
CUT = "fault/disconnect/raw"
STALL = "fault/stall/raw"


def exception_class(name: str) -> type[BaseException]:
    """The exception class the table names: the SDK's, its HTTP library's, or a built-in."""
    for where in (anthropic, TRANSPORT, json, builtins):
        found = getattr(where, name, None)
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
    raise LookupError(f"no exception class {name!r} in anthropic {RELEASE} or its HTTP library")


@contextmanager
def raises_like(case_id: str) -> Iterator[pytest.ExceptionInfo[BaseException]]:
    """Expect the block to raise what the table's case ``case_id`` says the installed SDK
    raises: exactly its class, with the table's cause and message where it gives them."""
    want = expectation(case_id, RELEASE)
    assert want.get("error"), f"{case_id}: the table expects no error from anthropic {RELEASE}"
    with pytest.raises(exception_class(want["error"])) as caught:
        yield caught
    got = outcome_of(caught.value)
    for key in ("error", "cause", "status", "error_type"):
        if key in want:
            assert got[key] == want[key], f"{case_id}: {key} {got[key]!r}, not {want[key]!r}"
    if "error_message" in want:
        assert want["error_message"] in got["error_message"], (case_id, got["error_message"])


class WireTap:
    """The SSE event names of the streams a client reads, as they arrive: what the SDK was
    given, pings included."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        *complete, self._pending = re.split(rb"\r\n\r\n|\n\n|\r\r", self._pending + chunk)
        for block in complete:
            for line in block.splitlines():
                if line.startswith(b"event:"):
                    self.events.append(line[6:].strip().decode())


class EventStreamTap(WireTap):
    """A :class:`WireTap` for a Bedrock stream: the ``type`` of the first-party event each
    ``chunk`` carries (``error`` for an ``exception`` message), garbled chunks as ``?``."""

    def __init__(self, tap: WireTap) -> None:
        self.events = tap.events
        self._decoder = EventStreamDecoder()

    def feed(self, chunk: bytes) -> None:
        for message in self._decoder.feed(chunk):
            if message.headers.get(":message-type") == "exception":
                self.events.append("error")
                continue
            event = chunk_event(message)
            try:
                self.events.append(str(json.loads(event or b"")["type"]))
            except (ValueError, KeyError, TypeError):
                self.events.append("?")


class _TappedStream(TRANSPORT.SyncByteStream):
    def __init__(self, stream: Any, tap: WireTap) -> None:
        self._stream = stream
        self._tap = tap

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._tap.feed(chunk)
            yield chunk

    def close(self) -> None:
        self._stream.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client (tapedeck is plain HTTP; making a context reads the
    CA bundle, which took most of a step's time)."""
    return ssl.create_default_context()


@functools.cache
def _admin() -> httpx.Client:
    """The client of tapedeck's admin API, made once for the same reason."""
    return httpx.Client(verify=_tls())


class _TappedTransport(TRANSPORT.BaseTransport):
    """The SDK's usual transport, with a :class:`WireTap` on every event stream."""

    def __init__(self, tap: WireTap) -> None:
        self._transport = TRANSPORT.HTTPTransport(verify=_tls())
        self._tap = tap

    def handle_request(self, request: Any) -> Any:
        response = self._transport.handle_request(request)
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            response.stream = _TappedStream(response.stream, self._tap)
        elif content_type.startswith(EVENTSTREAM):
            response.stream = _TappedStream(response.stream, EventStreamTap(self._tap))
        return response

    def close(self) -> None:
        self._transport.close()


def plain(value: Any) -> Any:
    """An SDK model (or a list or page of them) as plain JSON data."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "has_more"):  # a page
        return {
            "data": plain(list(value.data)),
            "has_more": value.has_more,
            "first_id": value.first_id,
            "last_id": value.last_id,
        }
    return json.loads(value.to_json())


def outcome_of(exc: BaseException | None) -> dict[str, Any]:
    """The error part of an outcome: class, HTTP status, API error type, message, cause, and
    the headers of the response the error came with."""
    if exc is None:
        return {"error": None, "status": None, "error_type": None, "error_message": None}
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    cause = exc.__cause__
    response = getattr(exc, "response", None)
    outcome = {
        "error": type(exc).__name__,
        "status": getattr(exc, "status_code", None),
        "error_type": error.get("type") if isinstance(error, dict) else None,
        "error_message": str(exc),
        "cause": type(cause).__name__ if cause is not None else None,
    }
    if response is not None:
        outcome["headers"] = dict(response.headers)
    return outcome


def client_for(
    base_url: str, case: Case, step: Step, count: list[int], tap: WireTap, platform: str
) -> Any:
    """``platform``'s client for ``step``, counting the requests it sends into ``count``."""
    headers = {"x-tapedeck-test-id": case.test_id}
    if step.fault is not None and step.fault_scope == "request":
        headers["x-tapedeck-fault"] = step.fault
    if step.timing is not None:
        headers["x-tapedeck-timing"] = step.timing
    timeout_ms = step.client.get("timeout_ms")
    if platform == FIRST_PARTY:
        make: Any = anthropic.Anthropic
        base_url_and_key: dict[str, Any] = {"base_url": base_url, "api_key": "tapedeck-conformance"}
    else:
        make = TABLE_CLIENTS[platform].make
        base_url_and_key = {"base": base_url}
    return make(
        **base_url_and_key,
        max_retries=step.client.get("max_retries", 0),
        timeout=timeout_ms / 1000 if timeout_ms is not None else DEFAULT_TIMEOUT_S,
        default_headers=headers,
        http_client=anthropic.DefaultHttpxClient(
            event_hooks={"request": [lambda _request: count.append(1)]},
            transport=_TappedTransport(tap),
        ),
    )


def perform(base_url: str, case: Case, step: Step, platform: str = FIRST_PARTY) -> dict[str, Any]:
    """Make ``step``'s call with ``platform``'s client against tapedeck at ``base_url``;
    what the SDK showed."""
    count: list[int] = []
    tap = WireTap()
    out: dict[str, Any] = {
        "events": None,
        "message": None,
        "text": None,
        "result": None,
        "headers": None,
    }
    error: BaseException | None = None
    if step.advance_clock_s is not None:
        advance_clock(base_url, case, step.advance_clock_s)
    messages_of = TABLE_CLIENTS[platform].messages if platform != FIRST_PARTY else None
    with client_for(base_url, case, step, count, tap, platform) as client:
        messages = messages_of(client) if messages_of else client.messages
        started = time.perf_counter()
        try:
            _call(client, messages, step, out)
        except Exception as exc:  # the table says which exception, if any
            error = exc
        took = time.perf_counter() - started
    out.update(outcome_of(error))
    out.setdefault("cause", None)
    out["retries"] = len(count) - 1
    out["wire"] = tap.events or None
    out["took_ms"] = round(took * 1000)
    return out


def _call(client: Any, messages: Any, step: Step, out: dict[str, Any]) -> None:
    body = step.body
    if step.call == "stream":
        with messages.stream(**body) as stream:
            out["message"] = plain(stream.get_final_message())
            out["text"] = stream.get_final_text()
    elif step.call == "raw":
        out["events"] = events = []
        with messages.create(**body, stream=True) as raw:
            for event in raw:
                events.append(event.type)
    elif step.call == "create":
        raw_response = messages.with_raw_response.create(**body)
        out["headers"] = dict(raw_response.headers)
        out["message"] = plain(raw_response.parse())
    elif step.call == "count_tokens":
        out["result"] = plain(messages.count_tokens(**body))
    elif step.call == "models.list":
        out["result"] = plain(client.models.list(**body))
    elif step.call == "models.retrieve":
        out["result"] = plain(client.models.retrieve(body["model_id"]))
    elif step.call == "batches.create":
        out["result"] = plain(messages.batches.create(**body))
    elif step.call == "batches.retrieve":
        out["result"] = plain(messages.batches.retrieve(body["batch_id"]))
    elif step.call == "batches.list":
        out["result"] = plain(messages.batches.list(**body))
    elif step.call == "batches.results":
        out["result"] = plain(list(messages.batches.results(body["batch_id"])))
    else:  # pragma: no cover - conformance_table checks the call names
        raise AssertionError(step.call)


def reset(base_url: str, case: Case) -> None:
    """Rewind the case's sequences and fault counters, so a rerun starts clean."""
    headers = {"x-tapedeck-test-id": case.test_id}
    _admin().post(f"{base_url}/_tapedeck/reset", headers=headers).raise_for_status()


def advance_clock(base_url: str, case: Case, seconds: float) -> None:
    """Stop the case's clock and move it ``seconds`` ahead (``POST /_tapedeck/clock``)."""
    headers = {"x-tapedeck-test-id": case.test_id}
    url = f"{base_url}/_tapedeck/clock"
    _admin().post(url, json={"advance_s": seconds}, headers=headers).raise_for_status()


def set_test_faults(base_url: str, case: Case, spec: str | None) -> None:
    """Give the case's test id ``spec`` through the admin API (``None``: drop them)."""
    headers = {"x-tapedeck-test-id": case.test_id}
    url = f"{base_url}/_tapedeck/faults"
    if spec is None:
        _admin().delete(url, headers=headers).raise_for_status()
    else:
        _admin().put(url, json={"faults": spec}, headers=headers).raise_for_status()


def run(base_url: str, case: Case, platform: str = FIRST_PARTY) -> list[dict[str, Any]]:
    """Every step of ``case``, in order, with the case's test id, made with ``platform``'s
    client; their outcomes."""
    reset(base_url, case)
    scoped = {s.fault for s in case.steps if s.fault_scope == "test"}
    assert len(scoped) <= 1, f"{case.id}: one test-scoped fault spec per case"
    for spec in scoped:
        set_test_faults(base_url, case, spec)
    try:
        return [perform(base_url, case, step, platform) for step in case.steps]
    finally:
        if scoped:
            set_test_faults(base_url, case, None)
