"""Errors as Google's front end sends them, for the statuses it answers itself on Vertex.

Every ``*.googleapis.com`` API answers an error in Google's error model
(https://cloud.google.com/apis/design/errors): the HTTP status and
``{"error": {"code": <status>, "message": "...", "status": "<canonical code>"}}``, the
canonical code the status's (``UNAUTHENTICATED`` for 401, ``PERMISSION_DENIED`` for 403,
``RESOURCE_EXHAUSTED`` for 429). On Vertex AI, Google authenticates the caller, checks IAM
and enforces the quotas before the request reaches Claude, so those statuses come in that
shape; Claude's own errors (400, 404, 413, 500, 529, an in-stream ``error`` event) reach the
client as the first-party API sent them. docs/platforms.md, "Faults on Vertex", has the
sources.
"""

from __future__ import annotations

import json

#: The statuses Vertex's front end answers, and their canonical codes (google.rpc.Code).
VERTEX_STATUSES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}


def google_error(status: int, code: str, first_party: bytes) -> bytes:
    """Google's error body for ``status`` carrying the message of the first-party error
    body ``first_party`` (its text, if it is not one)."""
    text = first_party.decode("utf-8", "replace")
    message = text
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        message = str(parsed["error"].get("message", text))
    body = {"error": {"code": status, "message": message, "status": code}}
    return json.dumps(body, ensure_ascii=False).encode()


class GoogleErrors:
    """A :class:`~tapedeck.platforms.door.Reframe`: the response as it is, but for the
    statuses in ``statuses``, whose body becomes Google's (headers kept, ``content-type``
    Google's ``application/json; charset=UTF-8``)."""

    def __init__(self, statuses: dict[int, str]) -> None:
        self._statuses = statuses
        self._status = 0
        self._held = bytearray()

    def head(
        self, status: int, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        if status not in self._statuses:
            return status, headers
        self._status = status
        kept = [(k, v) for k, v in headers if k != b"content-type"]
        return status, [*kept, (b"content-type", b"application/json; charset=UTF-8")]

    def body(self, chunk: bytes, more: bool) -> bytes:
        if not self._status:
            return chunk
        self._held += chunk
        if more:
            return b""
        return google_error(self._status, self._statuses[self._status], bytes(self._held))
