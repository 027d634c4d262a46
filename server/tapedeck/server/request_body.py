"""A request body read as the API reads it: a JSON object, or a ``multipart/form-data``
form (the Files API's uploads); a 400 in the API's shape for one that is neither."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from ..cassette.blobs import form_body
from ..cassette.model import Blob
from ..errors import APIError
from ..record.bodies import redact_bytes
from ..record.redact import Redactor
from ..wire import multipart

_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
#: Endpoints that only answer POST and always take a JSON object.
POST_ONLY = frozenset({"/v1/messages", "/v1/messages/count_tokens"})


def parse_body(raw: bytes, path: str) -> object:
    """A request body as JSON: ``None`` if empty (400 where a JSON object is required)."""
    if not raw.strip():
        if path in POST_ONLY:
            raise APIError(400, "tapedeck: request body is empty; expected a JSON object")
        return None
    return parse_json_object(raw)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; 400 ``invalid_request_error`` if not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise APIError(400, "tapedeck: request body is not UTF-8 text") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise APIError(400, f"tapedeck: request body is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. too deeply nested, huge integers
        raise APIError(400, f"tapedeck: request body cannot be parsed as JSON: {exc}") from None
    if not isinstance(body, dict):
        kind = _JSON_TYPES.get(type(body), "value")
        raise APIError(400, f"tapedeck: request body must be a JSON object, got a JSON {kind}")
    return body


def read_form(
    raw: bytes, kind: str, max_file_size: int, redactor: Redactor
) -> tuple[dict[str, Any], tuple[Blob, ...]]:
    """A ``multipart/form-data`` body as a recording keeps it (secrets out), and its files;
    413 for a file over ``max_file_size``."""
    try:
        parts = multipart.parse(raw, kind)
    except ValueError as exc:
        raise APIError(400, f"tapedeck: multipart/form-data body: {exc}") from None
    for part in parts:
        if part.filename is not None and len(part.data) > max_file_size:
            raise APIError(
                413,
                f"tapedeck: the file {part.filename!r} is {len(part.data)} bytes; the "
                f"limit is {max_file_size} bytes (setting max_file_size)",
            )
    return form_body(parts, partial(redact_bytes, redactor))
