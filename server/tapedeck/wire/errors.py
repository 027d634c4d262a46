"""Errors in the Messages API's own shape: the one place such a body is built.

Every error a client sees from tapedeck — its own (a miss, a bad request), a ``status``
fault, an in-stream ``error`` event, a streamed recording that ended in an error and is
asked for as JSON — is ``{"type": "error", "error": {"type": T, "message": M}}``, so the SDK
raises its usual exception class for each status.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from typing import Any

from ..errors import ERROR_TYPES, error_type_for
from ..pipeline import Head, Plan, Step
from .headers import encode_headers
from .sse import encode_event

#: error.type -> the HTTP status the API uses for it.
STATUS_FOR_TYPE: dict[str, int] = {error_type: status for status, error_type in ERROR_TYPES.items()}

#: The API's usual ``error.message`` for the types where it has a fixed one; other types
#: get the type in words (``billing_error`` -> ``Billing error``).
MESSAGES: dict[str, str] = {
    "overloaded_error": "Overloaded",
    "rate_limit_error": "Rate limited",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
}


def status_for(error_type: str) -> int:
    """The HTTP status the API answers an ``error.type`` with (500 for unknown types)."""
    return STATUS_FOR_TYPE.get(error_type, 500)


def message_for(error_type: str) -> str:
    """The API's usual message for ``error_type``, or the type in words."""
    return MESSAGES.get(error_type, error_type.replace("_", " ").capitalize())


#: Request ids as the API makes them (``req_011CdJimMSgGc81HLFxAA3J6``): ``req_``, the
#: ``011C`` every recorded id starts with, then 20 base62 characters.
REQUEST_ID_PREFIX = "req_011C"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def new_request_id() -> str:
    """A fresh ``request-id`` value in the API's format: 119 random bits in base62."""
    number = secrets.randbits(119)  # < 62**20
    digits = []
    for _ in range(20):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return REQUEST_ID_PREFIX + "".join(digits)


def error_body(
    error_type: str, message: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The API's error object: ``{"type": "error", "error": {...}}`` (+ ``request_id``)."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {
            "type": error_type,
            "message": message if message is not None else message_for(error_type),
        },
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_json(status: int, message: str, error_type: str | None = None) -> tuple[bytes, str]:
    """An HTTP error's JSON body and its ``request-id``."""
    request_id = new_request_id()
    body = error_body(error_type or error_type_for(status), message, request_id)
    return json.dumps(body, ensure_ascii=False).encode(), request_id


def error_event(error_type: str, message: str | None = None) -> bytes:
    """An in-stream ``event: error`` as it goes on the wire."""
    return encode_event("error", error_body(error_type, message))


def error_plan(
    status: int,
    message: str,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Plan:
    """An HTTP error response with the API's body shape, ``request-id`` and JSON content
    type, due at once."""
    payload, request_id = error_json(status, message, error_type)
    pairs = [
        ("content-type", "application/json"),
        ("request-id", request_id),
        ("content-length", str(len(payload))),
        *(headers or {}).items(),
    ]
    head = Head(status, encode_headers(pairs), False)
    return Plan(head, 0.0, (Step(0.0, payload),), 0.0, body=payload)
