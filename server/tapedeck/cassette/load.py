"""Read cassette YAML into the :mod:`tapedeck.cassette` model, checking every field.

Errors name the file, the line and what was expected, e.g.::

    cassettes/hello.yaml:14: interactions[0].response.status: expected an HTTP status
    code (an integer from 100 to 599), got 'ok'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CassetteError, YAMLSourceError
from . import fast_yaml
from .fields import Fields as _Fields
from .files import decoded
from .interaction_checks import (
    INTERACTION_KEYS,
    REQUEST_KEYS,
    RESPONSE_KEYS,
    recorded_at_of,
    request_of,
    response_of,
)
from .model import FORMAT_VERSION, Cassette, Interaction
from .normalize import Normalize
from .yaml_source import LineDict, load_yaml

_TOP_KEYS = frozenset({"version", "description", "normalize", "interactions"})


def parse_cassette(text: str, file: str, name: str, *, order: bool = False) -> Cassette:
    """Parse a cassette's YAML text; ``file`` is used in error messages.

    The fast loader (:mod:`.fast_yaml`) reads it when it can be trusted to read it as the
    reference loader does; a problem is always reported by the reference loader, which
    knows the line of everything. With ``order`` (as :func:`load_cassette`, and so
    ``serve``, reads a file), a stream whose event order an SDK cannot assemble is a
    problem too (:mod:`.event_order`).
    """
    document = fast_yaml.load(text)
    if isinstance(document, dict) and isinstance(document.get("interactions"), list):
        lines = fast_yaml.interaction_lines(text, len(document["interactions"]))
        if lines is not None:
            try:
                return cassette_from(document, file, name, lines, len(text.encode()), order)
            except CassetteError:
                pass  # said again below, with its line
    try:
        document = load_yaml(text)
    except YAMLSourceError as exc:
        raise CassetteError(file, exc.line, exc.message) from None
    return cassette_from(document, file, name, None, len(text.encode()), order)


def cassette_from(
    document: Any, file: str, name: str, lines: list[int] | None, size: int, order: bool
) -> Cassette:
    """The cassette ``document`` holds; ``lines`` are its interactions' lines when the
    document does not know them (it was read by the fast loader, which also made sure it
    is JSON data)."""
    if document is None:
        raise CassetteError(
            file, 1, f"empty file (expected 'version: {FORMAT_VERSION}' and 'interactions:')"
        )
    top = _Fields(file, "", document, 1, _TOP_KEYS)
    version = top.require("version", f"'version: {FORMAT_VERSION}' at the top", (int,))
    if version != FORMAT_VERSION:
        raise top.error(
            top.line_of("version"),
            f"unsupported cassette version {version}: this tapedeck reads version {FORMAT_VERSION}",
            "version",
        )
    description = top.get("description", "a string", (str,), "")
    items = top.require("interactions", "a list of request/response pairs", (list,))
    if not items:
        raise top.error(
            top.line_of("interactions"), "expected at least one interaction", "interactions"
        )
    interactions: list[Interaction] = []
    for i, item in enumerate(items):
        where = f"interactions[{i}]"
        line = lines[i] if lines is not None else top.line_of("interactions")
        f = _Fields(file, where, item, line, INTERACTION_KEYS)
        for key in ("request", "response"):
            if not f.has(key):
                raise f.error(f.line, f"missing field {key!r}")
        request = request_of(f.child("request", REQUEST_KEYS), lines is not None)
        response = response_of(f.child("response", RESPONSE_KEYS), lines is not None, order)
        interactions.append(Interaction(request, response, f.line, recorded_at_of(f)))
    return Cassette(
        name=name,
        path=file,
        interactions=tuple(interactions),
        description=description,
        normalize=_normalize(top),
        size=size,
    )


def _normalize(top: _Fields) -> tuple[Normalize, ...]:
    items = top.get("normalize", "a list of {path, pattern, replace} rules", (list,), [])
    rules = []
    for i, item in enumerate(items):
        try:
            rules.append(Normalize.parse(item))
        except ValueError as exc:
            line = item.line if isinstance(item, LineDict) else top.line_of("normalize")
            raise top.error(line, str(exc), f"normalize[{i}]") from None
    return tuple(rules)


def read_text(path: str | Path, file: str) -> str:
    """The UTF-8 text of cassette ``path`` (``file`` in errors)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise CassetteError(file, 0, f"cannot read: {exc.strerror}") from None
    return decoded(raw, file)


def load_cassette(path: str | Path, name: str, display: str | None = None) -> Cassette:
    """Read and parse one cassette file, as ``serve`` does: a stream an SDK cannot assemble
    is refused too (:mod:`.event_order`)."""
    file = display or str(path)
    return parse_cassette(read_text(path, file), file, name, order=True)
