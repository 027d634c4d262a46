"""Errors in the Messages API's own shape: ``{"type": "error", "error": {...}}``.

Clients see tapedeck's own errors (a miss, a bad request, a path escape) exactly as they
would see the API's, so the SDK raises its usual exception class for each status.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping

from starlette.responses import Response

#: ``error.type`` for each status, as the API uses them.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """The API's ``error.type`` for an HTTP status (unlisted 4xx/5xx fall back by class)."""
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


class APIError(Exception):
    """Raised anywhere in request handling; answered as an API-shaped error response."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_type_for(status)
        self.headers = headers


def new_request_id() -> str:
    """A fresh ``request-id`` value, marked as tapedeck's own."""
    return "req_tapedeck_" + secrets.token_hex(12)


def error_response(
    status: int,
    message: str,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error response with the API's body shape, a ``request-id`` and JSON content type."""
    request_id = new_request_id()
    body = {
        "type": "error",
        "error": {"type": error_type or error_type_for(status), "message": message},
        "request_id": request_id,
    }
    return Response(
        json.dumps(body).encode(),
        status_code=status,
        headers={"request-id": request_id, **(headers or {})},
        media_type="application/json",
    )
