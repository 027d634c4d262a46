"""The request journal's entries as typed objects: what ``tapedeck.requests`` holds.

``GET /_tapedeck/journal`` answers JSON (docs/observe.md lists every field);
:meth:`JournalEntry.from_json` turns one entry into a :class:`JournalEntry`, so a test can
assert on what its code sent and got::

    (call,) = tapedeck.requests
    assert call.request.body["messages"][-1]["content"] == "Hello"
    assert (call.status, call.cassette, call.end) == (200, "streaming/hello", "complete")

Its parts (the request, faults, the miss, ...) are in :mod:`.entry_parts`, and are
imported from here as before.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .entry_parts import (
    BrokenRule,
    Client,
    Difference,
    FiredFault,
    Miss,
    PlatformCall,
    SentRequest,
    TapedeckError,
    Window,
)

__all__ = [
    "BrokenRule",
    "Client",
    "Difference",
    "FiredFault",
    "JournalEntry",
    "Miss",
    "PlatformCall",
    "SentRequest",
    "TapedeckError",
    "Window",
    "entries_from_json",
]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One API request tapedeck answered, and how (docs/observe.md, "The request journal")."""

    id: int
    at: datetime.datetime
    test_id: str
    method: str
    path: str
    #: The request asked for an event stream (``"stream": true``).
    stream: bool
    #: ``None`` if the client went away before the headers.
    status: int | None
    #: ``cassette``, ``upstream``, ``synthesized``, ``fault``, ``miss`` or ``error``.
    source: str
    cassette: str | None
    interaction: int | None
    faults: tuple[FiredFault, ...]
    miss: Miss | None
    #: Events sent whole, and body bytes sent.
    events: int
    bytes: int
    duration_ms: float
    #: ``complete``, ``cut`` or ``client_left``.
    end: str
    error: TapedeckError | None
    #: The rules of the API it breaks, when validation checked it (``validate``).
    broken: tuple[BrokenRule, ...]
    upstream_ms: float | None
    request: SentRequest
    #: A platform client's request: its platform (``bedrock``, ``vertex``, ...) and the path
    #: it sent (``request.path`` is the first-party one it was served as); ``None`` otherwise.
    platform: PlatformCall | None = None

    @property
    def body(self) -> Any:
        """The parsed request body (``request.body``)."""
        return self.request.body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalEntry:
        """An entry of ``GET /_tapedeck/journal`` (or of its stream)."""
        miss = data["miss"]
        error = data["error"]
        request = data["request"]
        return cls(
            id=data["id"],
            at=datetime.datetime.fromisoformat(data["at"]),
            test_id=data["test_id"],
            method=data["method"],
            path=data["path"],
            stream=data["stream"],
            status=data["status"],
            source=data["source"],
            cassette=data["cassette"],
            interaction=data["interaction"],
            faults=tuple(
                FiredFault(
                    f["spec"], f["kind"], None if f["events"] is None else tuple(f["events"])
                )
                for f in data["faults"]
            ),
            miss=None
            if miss is None
            else Miss(
                miss["reason"],
                miss["cassette"],
                miss["interaction"],
                miss["where"],
                tuple(
                    Difference(
                        d["field"],
                        d.get("incoming"),
                        d.get("recorded"),
                        d["shown"],
                        _window(d.get("window")),
                    )
                    for d in miss["differences"]
                ),
                _client(miss.get("client")),
                _client(miss.get("recorded_client")),
            ),
            events=data["events"],
            bytes=data["bytes"],
            duration_ms=data["duration_ms"],
            end=data["end"],
            error=None if error is None else TapedeckError(error["type"], error["message"]),
            broken=tuple(BrokenRule(b["rule"], b["message"]) for b in data.get("broken", ())),
            upstream_ms=data["upstream_ms"],
            request=SentRequest(
                request["method"],
                request["path"],
                request.get("query", {}),
                request.get("headers", {}),
                request.get("body"),
                request.get("body_omitted"),
            ),
            platform=PlatformCall(**data["platform"]) if data.get("platform") else None,
        )

    def line(self) -> str:
        """The exchange in one line: status, what answered (or why nothing did, with the
        first difference), the faults that fired and where, and how the body ended."""
        parts = [f"{self.method} {self.path} {self.status or '-'} {self._answered()}"]
        if self.faults:
            parts.append("faults: " + "; ".join(_fault(f) for f in self.faults))
        if self.broken:
            parts.append("breaks: " + ", ".join(b.rule for b in self.broken))
        if self.stream and self.status == 200:
            parts.append(f"{self.events} events")
        parts += [f"end {self.end}", f"{self.duration_ms:.1f} ms"]
        return ", ".join(parts)

    def _answered(self) -> str:
        name = self._name()
        if self.source in ("cassette", "synthesized"):
            shape = " (converted)" if self.source == "synthesized" else ""
            return f"cassette {name}{shape}"
        if self.source == "upstream":
            return f"upstream, recorded into {self.cassette}" if self.cassette else "upstream"
        if self.source == "fault":
            return f"fault instead of {name}" if self.cassette else "fault"
        if self.source == "miss" and self.miss is not None:
            miss = self.miss
            if miss.reason != "no match":
                return f"miss: {miss.reason} ({name})"
            if miss.cassette is None:
                return "miss: no interaction to compare with"
            closest = f"{miss.cassette}#{miss.interaction}"
            first = f": {miss.differences[0].shown}" if miss.differences else ""
            known = miss.client is not None and miss.recorded_client is not None
            if known and miss.client != miss.recorded_client:
                first += (
                    f" (recorded with {miss.recorded_client}; this request is from {miss.client})"
                )
            return f"miss: closest {closest}{first}"
        if self.error is not None:
            message = self.error.message.removeprefix("tapedeck: ")
            return f"error {self.error.type}: {message[:160]}"
        return self.source

    def _name(self) -> str:
        if self.cassette is None:
            return "-"
        return self.cassette if self.interaction is None else f"{self.cassette}#{self.interaction}"


def _window(data: Mapping[str, Any] | None) -> Window | None:
    if data is None:
        return None
    return Window(data["at"], data["before"], data["incoming"], data["recorded"])


def _client(data: Mapping[str, Any] | None) -> Client | None:
    return None if data is None else Client(data["name"], data.get("release"))


def _fault(fault: FiredFault) -> str:
    if fault.events is None:
        return fault.spec
    if not fault.events:
        return f"{fault.spec} (did not act)"
    return f"{fault.spec} at event {', '.join(map(str, fault.events))}"


def entries_from_json(data: Sequence[Mapping[str, Any]]) -> list[JournalEntry]:
    """The entries of a ``GET /_tapedeck/journal`` answer (its ``entries`` list)."""
    return [JournalEntry.from_json(entry) for entry in data]
