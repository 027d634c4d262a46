"""Bytes kept beside a cassette: uploaded files and binary downloads, by content hash.

A cassette ``files/report.yaml`` keeps them in the folder ``files/report.files/``, one
file per distinct content, named by its SHA-256 (hex). The YAML holds the hash and size:

- a ``multipart/form-data`` request's ``body`` is the form: ``{multipart: [parts]}``,
  each part ``{name, value}`` for a field or ``{name, filename, content_type, sha256,
  size}`` for a file (:func:`form_body`), so a request matches by the hash of what it
  uploads;
- a binary response is ``binary: {sha256, size}``, replayed byte for byte.

Files are written atomically, inside the cassette directory only (:func:`write_blob`);
content that is already there is not written again.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import CassetteError
from ..wire.multipart import Part
from .model import Blob, Interaction
from .save import write_inside

#: The key of a request body that describes a ``multipart/form-data`` form.
FORM_KEY = "multipart"
#: The folder beside a cassette that holds its blobs: ``<name>.files``.
FOLDER_SUFFIX = ".files"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def blob_of(data: bytes) -> Blob:
    """The :class:`Blob` holding ``data``."""
    return Blob(hashlib.sha256(data).hexdigest(), len(data), data)


def is_sha256(text: object) -> bool:
    """Whether ``text`` is a SHA-256 as blobs are named: 64 lower-case hex digits."""
    return isinstance(text, str) and _HEX.match(text) is not None


def blob_relative(name: str, sha256: str) -> str:
    """Where cassette ``name``'s blob ``sha256`` is, relative to the cassette directory."""
    return f"{name}{FOLDER_SUFFIX}/{sha256}"


def form_body(
    parts: Sequence[Part], clean: Callable[[bytes], bytes]
) -> tuple[dict[str, Any], tuple[Blob, ...]]:
    """The request body a recording keeps for a form of ``parts``, and its files' blobs.

    ``clean`` takes the secrets out of a file's bytes before they are hashed (so a request
    matches what its recording holds); fields' values are kept as text.
    """
    described: list[dict[str, Any]] = []
    uploads: list[Blob] = []
    for part in parts:
        if part.filename is None:
            described.append({"name": part.name, "value": part.data.decode("utf-8", "replace")})
            continue
        blob = blob_of(clean(part.data))
        uploads.append(blob)
        described.append(
            {
                "name": part.name,
                "filename": part.filename,
                "content_type": part.content_type,
                "sha256": blob.sha256,
                "size": blob.size,
            }
        )
    return {FORM_KEY: described}, tuple(uploads)


def uploads_in(body: Any) -> tuple[Blob, ...]:
    """The files a recorded form body (:func:`form_body`) refers to; none for JSON."""
    parts = body.get(FORM_KEY) if isinstance(body, dict) and len(body) == 1 else None
    if not isinstance(parts, list):
        return ()
    return tuple(
        Blob(p["sha256"], int(p.get("size", 0)))
        for p in parts
        if isinstance(p, dict) and is_sha256(p.get("sha256")) and isinstance(p.get("size"), int)
    )


def write_blob(root: Path, name: str, blob: Blob) -> None:
    """Write ``blob``'s bytes beside cassette ``name`` under ``root``, atomically and
    following no link (:func:`~.save.write_inside`); nothing if it is already there."""
    if blob.data is None:
        return
    relative = blob_relative(name, blob.sha256)
    if os.path.isfile(root / relative) and not os.path.islink(root / relative):
        return  # named by its content: the same bytes
    write_inside(root, relative, blob.data)


def read_blob(cassette_file: str, name: str, blob: Blob, line: int) -> bytes:
    """The bytes of ``blob`` of cassette ``name`` loaded from ``cassette_file``; a
    :class:`CassetteError` at ``line`` if the file is missing or holds other bytes."""
    if blob.data is not None:
        return blob.data
    stem = name.rsplit("/", 1)[-1]
    folder = Path(cassette_file).parent / f"{stem}{FOLDER_SUFFIX}"
    path = folder / blob.sha256
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CassetteError(
            cassette_file,
            line,
            f"binary: cannot read {path}: {exc.strerror or exc} (the bytes of a binary body "
            f"are kept beside the cassette, in {stem}{FOLDER_SUFFIX}/)",
        ) from None
    if hashlib.sha256(data).hexdigest() != blob.sha256:
        raise CassetteError(
            cassette_file, line, f"binary: {path} does not hold the bytes whose sha256 it is named"
        )
    return data


def missing(cassette_file: str, interactions: Sequence[Interaction]) -> list[tuple[int, str]]:
    """``(line, problem)`` for each ``binary`` response of the cassette in ``cassette_file``
    whose bytes are not beside it (what ``tapedeck lint`` reports)."""
    path = Path(cassette_file)
    folder = path.parent / f"{path.stem}{FOLDER_SUFFIX}"
    found = []
    for i, interaction in enumerate(interactions):
        blob = interaction.response.binary
        if blob is not None and not (folder / blob.sha256).is_file():
            found.append(
                (
                    interaction.line,
                    f"interactions[{i}].response.binary: {path.stem}{FOLDER_SUFFIX}/{blob.sha256} "
                    "is missing; copy the cassette with its folder, or record it again",
                )
            )
    return found
