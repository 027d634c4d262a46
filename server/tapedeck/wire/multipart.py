"""``multipart/form-data`` request bodies (RFC 7578), split into their parts.

The SDKs upload files this way (``files.upload``, ``skills.create``, skill versions):
each part has a ``content-disposition: form-data; name=...`` header, a file part also a
``filename`` and usually a ``content-type``. Only what tapedeck needs is read: the part's
name, filename, content type and bytes; a body that is not well-formed is a
:class:`ValueError` naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MEDIA_TYPE = "multipart/form-data"
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a form: a plain field (``filename`` is ``None``) or a file."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def is_multipart(content_type: str | None) -> bool:
    """Whether a ``content-type`` value says ``multipart/form-data``."""
    return content_type is not None and media_type(content_type) == MEDIA_TYPE


def media_type(content_type: str) -> str:
    """The media type of a ``content-type`` value, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def _params(value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        text = raw.strip()
        if text.startswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        found[key.lower()] = text
    return found


def parse(body: bytes, content_type: str) -> list[Part]:
    """The parts of ``body``, sent with ``content_type`` (which names the boundary)."""
    boundary = _params(content_type).get("boundary")
    if not boundary:
        raise ValueError("content-type multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start != 0 and (start < 0 or body[start - 2 : start] != b"\r\n"):
        raise ValueError("the body does not start with the boundary the content-type names")
    parts: list[Part] = []
    at = start + len(delimiter)
    while True:
        if body[at : at + 2] == b"--":
            return parts
        if body[at : at + 2] != b"\r\n":
            raise ValueError("a boundary is not followed by a line break")
        end = _next(body, b"\r\n" + delimiter, at + 2)
        parts.append(_part(body[at + 2 : end]))
        at = end + 2 + len(delimiter)


def _next(body: bytes, delimiter: bytes, start: int) -> int:
    """Where the next delimiter line is: the delimiter followed by ``--`` or a line break
    (the same bytes followed by anything else are data)."""
    while True:
        end = body.find(delimiter, start)
        if end < 0:
            raise ValueError("the body ends before its closing boundary")
        after = body[end + len(delimiter) : end + len(delimiter) + 2]
        if after in (b"--", b"\r\n"):
            return end
        start = end + 1


def _part(raw: bytes) -> Part:
    head, sep, data = raw.partition(b"\r\n\r\n")
    if not sep:
        if not raw.startswith(b"\r\n"):
            raise ValueError("a part has no blank line after its headers")
        head, data = b"", raw[2:]
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    if media_type(disposition) != "form-data":
        raise ValueError("a part has no content-disposition: form-data header")
    params = _params(disposition)
    if "name" not in params:
        raise ValueError("a part's content-disposition has no name")
    return Part(params["name"], params.get("filename"), headers.get("content-type"), data)
