"""The ``before_record_request`` / ``before_record_response`` hooks: they see each recording
last and may change or drop it; what they return is redacted again (a hook may put back a
secret redaction took out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..cassette.blobs import blob_of
from ..cassette.model import RecordedRequest, RecordedResponse
from .bodies import redact_bytes
from .redact import Redactor

#: A hook: takes the recorded request (or response), returns it (changed) or ``None``.
Hook = Callable[[Any], Any]


def hooked(
    request: RecordedRequest,
    response: RecordedResponse,
    redact: Redactor,
    before_request: Hook | None,
    before_response: Hook | None,
) -> tuple[RecordedRequest, RecordedResponse] | None:
    """The exchange as the hooks leave it, redacted; ``None`` if one of them dropped it."""
    if before_request is not None:
        request = before_request(request)
        if request is None:
            return None
    if before_response is not None:
        response = before_response(response)
        if response is None:
            return None
    request = replace(request, body=redact.value(request.body), path=redact.text(request.path))
    if response.events is not None:
        response = replace(response, events=redact.events(response.events))
    elif response.binary is not None and response.binary.data is not None:
        response = replace(response, binary=blob_of(redact_bytes(redact, response.binary.data)))
    else:
        response = replace(
            response,
            body=redact.value(response.body),
            text=None if response.text is None else redact.text(response.text),
        )
    return request, replace(response, headers=redact.headers(response.headers))
