"""Message batches: their ``results_url`` must point back at tapedeck.

The SDK fetches a batch's ``results_url`` as an absolute URL, so a recorded one would send
the client to the real API. Responses under :data:`BATCHES` get it rewritten to the base
URL the client used to reach tapedeck, keeping the path.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from ..cassette.model import RecordedResponse

BATCHES = "/v1/messages/batches"


def _rewrite(value: Any, base: str) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                _rebase(v, base) if k == "results_url" and isinstance(v, str) else _rewrite(v, base)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, base) for v in value]
    return value


def _rebase(url: str, base: str) -> str:
    parts = urlsplit(url)
    return f"{base}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def has_results_url(path: str, body: Any) -> bool:
    """Whether a response to ``path`` with this JSON ``body`` carries a ``results_url``."""
    return path.startswith(BATCHES) and "results_url" in json.dumps(body)


def rewrite_results_url(payload: bytes, base: str) -> bytes:
    """A JSON body with every ``results_url`` moved onto ``base``; other bodies unchanged."""
    if b'"results_url"' not in payload:
        return payload
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    return json.dumps(_rewrite(data, base), ensure_ascii=False, separators=(",", ":")).encode()


def with_results_url(response: RecordedResponse, base: str) -> RecordedResponse:
    """``response`` with its ``results_url`` values pointing at ``base``."""
    return replace(response, body=_rewrite(response.body, base))
