"""Deciding whether an incoming request is the one a cassette recorded.

A request is reduced to a :class:`RequestShape`: method, path, sorted query, the headers
that take part in matching, and the parsed JSON body without the ignored fields. Two
requests match when their shapes are equal, which is a dictionary lookup on
:attr:`RequestShape.key`. When nothing matches, :mod:`tapedeck.cassette.differences`
explains why.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .normalize import Normalize, normalized

#: The prefix of the beta flag that turns message threads on (see :mod:`.threads`).
THREADS_BETA = "message-threads-"

#: Headers that never take part in matching, whatever the configuration says: they vary
#: between runs, machines and SDK releases, carry secrets, or steer tapedeck itself.
NEVER_MATCHED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "anthropic-version",
        "user-agent",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "host",
        "connection",
        "cookie",
    }
)
_NEVER_MATCHED_PREFIXES = ("x-stainless-", "x-tapedeck-")
#: The body fields an interaction matches on (``match:``), or ``None`` for the whole request.
Fields = tuple[str, ...] | None
_BETA = ("beta", "true")
#: A shape key longer than this is indexed by its SHA-256 digest (:func:`index_key`).
LONG_KEY = 4096
_DIGEST = "sha256:"


def index_key(key: str) -> str:
    """What the library indexes a shape ``key`` under: the key itself, or for one longer
    than :data:`LONG_KEY` its digest (``sha256:...``; a key is JSON, so never starts so).
    The library and the recorder's per-request sets then hold 71 characters for a 1 MB
    request, and so can a cassette whose requests were dropped (:mod:`.resident`)."""
    if len(key) <= LONG_KEY:
        return key
    return _DIGEST + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class MatchRules:
    """Which parts of a request identify it.

    ``headers``: header names compared (lower case). ``ignore_body``: dotted paths of body
    fields left out of the comparison; ``*`` stands for any key or list item, digits for a
    list index, e.g. ``metadata.user_id`` or ``messages.*.cache_control``.
    """

    headers: tuple[str, ...] = ("anthropic-beta",)
    ignore_body: tuple[str, ...] = ("metadata.user_id",)
    #: Rewrites applied to every body before comparing (see :mod:`.normalize`).
    normalize: tuple[Normalize, ...] = ()
    _ignore_paths: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in self.headers:
            if name.lower() in NEVER_MATCHED_HEADERS or name.lower().startswith(
                _NEVER_MATCHED_PREFIXES
            ):
                raise ValueError(f"header {name!r} cannot be matched on: it varies between runs")
        object.__setattr__(self, "headers", tuple(sorted({h.lower() for h in self.headers})))
        paths = []
        for path in self.ignore_body:
            parts = tuple(path.split("."))
            if not path or "" in parts:
                raise ValueError(f"invalid body field path {path!r} (expected e.g. 'a.b.c')")
            paths.append(parts)
        object.__setattr__(self, "_ignore_paths", tuple(paths))

    def shape(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Iterable[tuple[str, str]],
        body: Any,
    ) -> RequestShape:
        """Reduce a request to the parts that identify it."""
        wanted = {}
        for name, value in headers:
            name = name.lower()
            if name in self.headers:
                value = _header_value(name, value)
                if value:
                    wanted[name] = value
        # Stream or not is the client's choice of shape, not part of what it asks: one
        # recording answers both (see tapedeck.source.synthesized).
        body = _without(body, ("stream",))
        for ignored in self._ignore_paths:
            body = _without(body, ignored)
        if self.normalize:
            body = normalized(body, self.normalize)
        return RequestShape(
            method=method.upper(),
            path=path,
            # Some SDK releases mark beta calls with ?beta=true and others do not: a
            # recording made with one must replay to the other.
            query=tuple(sorted(q for q in query if q != _BETA)),
            headers=tuple(sorted(wanted.items())),
            body=body,
        )


def _header_value(name: str, value: str) -> str:
    if name == "anthropic-beta":  # a set of flags: order and spacing carry no meaning
        flags = {v.strip() for v in value.split(",")}
        # Message threads change how a conversation is sent, not what it asks (.threads).
        return ",".join(sorted(f for f in flags if f and not f.startswith(THREADS_BETA)))
    return value.strip()


def _without(value: Any, parts: tuple[str, ...]) -> Any:
    """``value`` with the field at ``parts`` removed; shares everything it does not change."""
    head, rest = parts[0], parts[1:]
    if isinstance(value, Mapping):
        keys = list(value) if head == "*" else [head] if head in value else []
        if not keys:
            return value
        out = dict(value)
        for key in keys:
            inner = _without(value[key], rest) if rest else None
            # A mapping emptied by the removal counts as absent: `metadata: {user_id: x}`
            # then matches a request that sends no metadata at all.
            if not rest or (isinstance(inner, Mapping) and not inner and value[key]):
                del out[key]
            else:
                out[key] = inner
        return out
    if isinstance(value, list):
        if head == "*":
            indexes = set(range(len(value)))
        elif head.isdigit() and int(head) < len(value):
            indexes = {int(head)}
        else:
            return value
        if rest:
            return [_without(v, rest) if i in indexes else v for i, v in enumerate(value)]
        return [v for i, v in enumerate(value) if i not in indexes]
    return value


@dataclass(frozen=True, slots=True)
class RequestShape:
    """The identifying parts of a request; equal shapes match."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: Any
    _key: str | None = field(default=None, init=False, repr=False, compare=False)
    _index_key: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The shape as one text (sorted JSON): equal shapes have equal keys. Made when
        first asked for: a shape made to explain a miss (:meth:`project`) never needs it,
        and for a 1 MB body it is a megabyte of JSON."""
        key = self._key
        if key is None:
            key = json.dumps(
                [self.method, self.path, self.query, self.headers, self.body],
                sort_keys=True,
                ensure_ascii=False,
                separators=(",", ":"),
                default=str,
            )
            object.__setattr__(self, "_key", key)
        return key

    @property
    def index_key(self) -> str:
        """:attr:`key`, or its digest if long (:func:`index_key`): what the library and
        the sequence positions know the shape by."""
        found = self._index_key
        if found is None:
            found = index_key(self.key)
            object.__setattr__(self, "_index_key", found)
        return found

    def stripped(self) -> RequestShape:
        """This shape as a cassette whose requests were dropped keeps it: method, path and
        :attr:`index_key`, no body (it still indexes the same; it explains no miss)."""
        shape = RequestShape(self.method, self.path, (), (), None)
        object.__setattr__(shape, "_key", self.index_key)
        object.__setattr__(shape, "_index_key", self.index_key)
        return shape

    def project(self, fields: Fields, rules: tuple[Normalize, ...] = ()) -> RequestShape:
        """The shape with a cassette's ``rules`` applied to its body, then restricted to
        method, path and the body ``fields`` (all if ``None``)."""
        if fields is None and not rules:
            return self
        body = normalized(self.body, rules) if rules else self.body
        if fields is None:
            return RequestShape(self.method, self.path, self.query, self.headers, body)
        kept = body if isinstance(body, Mapping) else {}
        return RequestShape(
            self.method, self.path, (), (), {k: kept[k] for k in fields if k in kept}
        )
