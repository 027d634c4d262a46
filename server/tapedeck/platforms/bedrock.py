"""Claude on Amazon Bedrock (``AnthropicBedrock``, ``@anthropic-ai/bedrock-sdk``).

The clients send ``POST {base}/model/{model}/invoke`` (``/invoke-with-response-stream``
when streaming), the model percent-encoded in the path (an ARN's ``/`` as ``%2F``), a body
without ``model`` or ``stream`` and with ``anthropic_version`` (``bedrock-2023-05-31``), the
beta flags as the body's ``anthropic_beta`` list, and a SigV4 ``authorization`` with
``x-amz-date`` (and ``x-amz-security-token`` for temporary credentials) — or a Bedrock API
key as a bearer token.

Bedrock answers ``invoke`` with the Messages JSON, and the stream as
``application/vnd.amazon.eventstream``: each event a ``chunk`` message carrying the event's
JSON base64-encoded (:mod:`tapedeck.wire.eventstream`). Errors are Bedrock's: the status,
``x-amzn-errortype`` naming the exception and ``{"message": ...}``; mid-stream, an
``exception`` message. docs/platforms.md#bedrock has the sources and the mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..wire.errors import status_for
from ..wire.eventstream import CONTENT_TYPE, encode_chunk, encode_exception
from ..wire.sse_decode import SSEDecoder
from .door import FIRST_PARTY_VERSION, Door, Route

_PREFIX = "/model/"
_INVOKE = "/invoke"
_STREAM = "/invoke-with-response-stream"

#: A first-party error status -> Bedrock's status and ``x-amzn-errortype`` (the
#: ``InvokeModel`` errors of botocore's ``bedrock-runtime`` model). Bedrock has no 529:
#: an overloaded model is its 503 ServiceUnavailableException.
ERRORS: dict[int, tuple[int, str]] = {
    400: (400, "ValidationException"),
    401: (403, "AccessDeniedException"),
    403: (403, "AccessDeniedException"),
    404: (404, "ResourceNotFoundException"),
    408: (408, "ModelTimeoutException"),
    413: (400, "ValidationException"),
    424: (424, "ModelErrorException"),
    429: (429, "ThrottlingException"),
    500: (500, "InternalServerException"),
    503: (503, "ServiceUnavailableException"),
    504: (408, "ModelTimeoutException"),
    529: (503, "ServiceUnavailableException"),
}

#: The ``ResponseStream`` exception an in-stream ``error`` event becomes.
STREAM_EXCEPTION = "modelStreamErrorException"


def bedrock_error(status: int) -> tuple[int, str]:
    """Bedrock's status and exception name for a first-party error status."""
    if status in ERRORS:
        return ERRORS[status]
    return (status, "InternalServerException" if status >= 500 else "ValidationException")


@dataclass(slots=True)
class BedrockRoute(Route):
    """A Bedrock request: ``stream`` from the path, ``anthropic_beta`` to the header."""

    streamed: bool = False

    def found(self, body: dict[str, Any]) -> None:
        if self.streamed:
            body["stream"] = True
        else:
            body.pop("stream", None)
        betas = body.pop("anthropic_beta", None)
        if isinstance(betas, list) and all(isinstance(b, str) for b in betas):
            self.headers["anthropic-beta"] = ",".join(betas)
        elif betas is not None:
            body["anthropic_beta"] = betas  # not a list of flags: the API's checks answer it

    def reframe(self) -> BedrockReframe:
        return BedrockReframe()


@dataclass(slots=True)
class BedrockReframe:
    """A first-party answer as Bedrock sends it (one per request)."""

    _mode: str = "json"
    _decoder: SSEDecoder = field(default_factory=SSEDecoder)
    _held: bytearray = field(default_factory=bytearray)

    def head(
        self, status: int, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        content_type = next((v for k, v in headers if k == b"content-type"), b"")
        # Bedrock names its request id x-amzn-requestid and sends no request-id: a client
        # that read one would show an id the real service never gives it.
        kept = [(k, v) for k, v in headers if k not in (b"content-type", b"request-id")]
        request_id = next((v for k, v in headers if k == b"request-id"), None)
        if request_id is not None:
            kept.append((b"x-amzn-requestid", request_id))
        if status >= 400:
            self._mode = "error"
            status, error_type = bedrock_error(status)
            kept.append((b"content-type", b"application/json"))
            kept.append((b"x-amzn-errortype", error_type.encode()))
        elif content_type.startswith(b"text/event-stream"):
            self._mode = "stream"
            kept.append((b"content-type", CONTENT_TYPE.encode()))
            kept.append((b"x-amzn-bedrock-content-type", b"application/json"))
        else:
            kept.append((b"content-type", content_type or b"application/json"))
        return status, kept

    def body(self, chunk: bytes, more: bool) -> bytes:
        if self._mode == "stream":
            return b"".join(_frame(e.event, e.data) for e in self._decoder.feed(chunk))
        if self._mode == "error":
            self._held += chunk
            if more:
                return b""
            return json.dumps({"message": _message(bytes(self._held))}).encode()
        return chunk


def _frame(event: str, data: str) -> bytes:
    if event == "error":
        error = _error_of(data)
        error_type = str(error.get("type", "api_error"))
        message = str(error.get("message", ""))
        return encode_exception(
            STREAM_EXCEPTION,
            {
                "message": message,
                "originalStatusCode": status_for(error_type),
                "originalMessage": message,
            },
        )
    if not data:
        return b""
    return encode_chunk(data.encode())


def _error_of(data: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {"message": data}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {"message": data}


def _message(body: bytes) -> str:
    """The message of a first-party error body (its text if it is not one)."""
    text = body.decode("utf-8", "replace")
    return str(_error_of(text).get("message", text))


class Bedrock(Door):
    """``/model/{model}/invoke`` and ``/model/{model}/invoke-with-response-stream``."""

    name = "bedrock"
    prefixes = (_PREFIX,)

    def route(self, method: str, path: str) -> Route | None:
        if method != "POST" or not path.startswith(_PREFIX):
            return None
        for suffix, streamed in ((_STREAM, True), (_INVOKE, False)):
            if path.endswith(suffix):
                model = path[len(_PREFIX) : -len(suffix)]
                if not model:
                    return None
                return BedrockRoute(
                    platform=self.name,
                    path="/v1/messages",
                    model=model,
                    defaults={"anthropic-version": FIRST_PARTY_VERSION},
                    dropped=("anthropic_version",),
                    streamed=streamed,
                )
        return None
