"""What a recording keeps of a whole (not streamed) body: JSON, text, or bytes.

Any endpoint records with no code of its own; its answer is kept by what it is:

- JSON (``application/json``, ``...+json``, or no content type and a body that parses) as
  ``body``, replayed as compact JSON;
- text (``text/*``, JSON Lines, XML, ...) that is UTF-8 as ``text``, replayed as it came;
- anything else — ``application/octet-stream``, ``application/pdf``, images, a textual
  type whose bytes are not UTF-8 — as ``binary``: the bytes kept beside the cassette by
  their SHA-256 (:mod:`tapedeck.cassette.blobs`), replayed byte for byte.

Secrets are taken out of all three: a key-shaped string in bytes is found in their Latin-1
reading (one character per byte), so everything around it stays byte for byte the same.
"""

from __future__ import annotations

from typing import Any

from ..cassette.blobs import blob_of
from ..cassette.model import Blob
from ..wire.multipart import media_type
from ..wire.sse_decode import json_or_text
from .redact import Redactor

#: Media types (besides ``text/*``, ``...+json`` and ``...+xml``) whose body is text.
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/x-jsonl",
        "application/jsonl",
        "application/x-ndjson",
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/yaml",
    }
)


def is_textual(content_type: str | None) -> bool:
    """Whether a ``content-type`` names text (``None``: the body decides)."""
    if content_type is None:
        return True
    kind = media_type(content_type)
    return (
        kind in TEXT_TYPES
        or kind.startswith("text/")
        or kind.endswith(("+json", "+xml"))
        or kind == ""
    )


def is_json_type(content_type: str | None) -> bool:
    """Whether a ``content-type`` names JSON, or there is none."""
    if content_type is None:
        return True
    kind = media_type(content_type)
    return kind in ("", "application/json") or kind.endswith("+json")


def redact_bytes(redactor: Redactor, data: bytes) -> bytes:
    """``data`` with every secret the redactor knows replaced, the other bytes unchanged."""
    if not redactor.patterns and b"sk-ant-" not in data:
        return data
    return redactor.text(data.decode("latin-1")).encode("latin-1", "replace")


def whole_body(
    payload: bytes, content_type: str | None, redactor: Redactor
) -> tuple[Any, str | None, Blob | None]:
    """How a recording keeps ``payload``: ``(body, text, binary)``, at most one set."""
    if not payload:
        return None, None, None
    try:
        text = payload.decode("utf-8") if is_textual(content_type) else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        return None, None, blob_of(redact_bytes(redactor, payload))
    if is_json_type(content_type) and text.strip():
        data = json_or_text(text)
        if not isinstance(data, str):
            return redactor.value(data), None, None
    return None, redactor.text(text), None
