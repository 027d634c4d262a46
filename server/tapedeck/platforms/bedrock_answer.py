"""Bedrock's answer read back as the first-party one, for recording through Bedrock.

The reverse of :class:`~tapedeck.platforms.bedrock.BedrockReframe`:

- ``application/vnd.amazon.eventstream``: each ``chunk`` message's event JSON (the
  base64 ``bytes`` of its payload) becomes the SSE event its ``type`` names, at its arrival
  time; an ``exception`` message becomes ``event: error`` with the first-party error (the
  type from :data:`STREAM_ERRORS`, or from a ``modelStreamErrorException``'s
  ``originalStatusCode``). Bedrock's ``amazon-bedrock-invocationMetrics`` (in its last
  event) is dropped.
- An error — ``x-amzn-errortype`` and ``{"message": ...}`` — becomes the first-party
  status and ``{"type": "error", "error": {"type", "message"}}`` (:data:`STATUSES`).
- A JSON answer is the Messages JSON already.

Bedrock's own headers (``x-amzn-*``) are dropped; its request id is kept as ``request-id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import error_type_for
from ..wire.eventstream import CONTENT_TYPE, EventStreamDecoder, Message, chunk_event

#: Bedrock's exception (``x-amzn-errortype``, before any ``:``) -> the first-party status.
#: A status left out keeps Bedrock's. 503 is 529: Bedrock's overloaded model
#: (bedrock.py's ERRORS maps 529 to it), so the recording replays as it was received.
STATUSES: dict[str, int] = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    # A signature or key Bedrock does not take (AWS's common errors): the API's 401.
    "UnrecognizedClientException": 401,
    "InvalidSignatureException": 401,
    "ExpiredTokenException": 401,
    "IncompleteSignatureException": 401,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 504,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 529,
}
#: The first-party error type of each ``ResponseStream`` exception member.
STREAM_ERRORS: dict[str, str] = {
    "internalServerException": "api_error",
    "modelStreamErrorException": "api_error",
    "validationException": "invalid_request_error",
    "throttlingException": "rate_limit_error",
    "modelTimeoutException": "timeout_error",
    "serviceUnavailableException": "overloaded_error",
}
_METRICS = "amazon-bedrock-invocationMetrics"


def first_party_error(error_type: str, message: str) -> str:
    """The first-party error body's JSON text."""
    error = {"type": "error", "error": {"type": error_type, "message": message}}
    return json.dumps(error, ensure_ascii=False, separators=(",", ":"))


def _message_of(payload: bytes) -> str:
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")
    if isinstance(parsed, dict):
        for key in ("message", "Message", "originalMessage"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return payload.decode("utf-8", "replace")


@dataclass(slots=True)
class BedrockAnswer:
    """Reads one Bedrock answer (an :class:`~tapedeck.source.platform_form.Answer`)."""

    error: str | None = None
    _mode: str = "json"
    _error_status: int = 0
    _decoder: EventStreamDecoder = field(default_factory=EventStreamDecoder)

    def head(
        self, status: int, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]]]:
        got = dict(headers)
        kept = [(k, v) for k, v in headers if not k.startswith("x-amzn-") and k != "content-type"]
        if "request-id" not in got and "x-amzn-requestid" in got:
            kept.append(("request-id", got["x-amzn-requestid"]))
        kind = got.get("content-type", "")
        if status >= 400:
            self._mode = "error"
            error_type = got.get("x-amzn-errortype", "").partition(":")[0]
            status = STATUSES.get(error_type, status)
            self._error_status = status
            kept.append(("content-type", "application/json"))
        elif kind.startswith(CONTENT_TYPE):
            self._mode = "stream"
            kept.append(("content-type", "text/event-stream; charset=utf-8"))
        else:
            kept.append(("content-type", kind or "application/json"))
        return status, kept

    def events(self, chunk: bytes) -> list[tuple[str, str]]:
        out = [e for m in self._decoder.feed(chunk) if (e := self._event(m)) is not None]
        if self._decoder.error is not None:
            self.error = f"Bedrock's event stream could not be read: {self._decoder.error}"
        return out

    def whole(self, body: bytes) -> bytes:
        if self._mode != "error":
            return body
        text = first_party_error(error_type_for(self._error_status), _message_of(body))
        return text.encode()

    def _event(self, message: Message) -> tuple[str, str] | None:
        if message.headers.get(":message-type") == "exception":
            return "error", self._exception(message)
        raw = chunk_event(message)
        if raw is None:
            return None
        try:
            event: Any = json.loads(raw)
        except ValueError:
            return "message", raw.decode("utf-8", "replace")
        if not isinstance(event, dict):
            return "message", raw.decode("utf-8", "replace")
        if _METRICS in event:
            event = {k: v for k, v in event.items() if k != _METRICS}
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        return str(event.get("type", "message")), text

    @staticmethod
    def _exception(message: Message) -> str:
        name = str(message.headers.get(":exception-type", ""))
        error_type = STREAM_ERRORS.get(name, "api_error")
        try:
            body: Any = json.loads(message.payload)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("originalStatusCode"), int):
            error_type = error_type_for(body["originalStatusCode"])
        return first_party_error(error_type, _message_of(message.payload))
