"""The parts of a request journal entry (:class:`~tapedeck.observe.entries.JournalEntry`) as
typed objects: the request as sent, the faults that fired, the rules it breaks, the
platform it came through, the error tapedeck answered, and why it missed — the differences
from the closest interaction and the clients on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BrokenRule",
    "Client",
    "Difference",
    "FiredFault",
    "Miss",
    "PlatformCall",
    "SentRequest",
    "TapedeckError",
    "Window",
]


@dataclass(frozen=True, slots=True)
class TapedeckError:
    """An error tapedeck answered itself: the ``error.type`` and ``error.message`` sent."""

    type: str
    message: str


@dataclass(frozen=True, slots=True)
class BrokenRule:
    """A rule of the API the request breaks (docs/validation.md): its name and what the
    400 says (or would say, with ``validate: warn`` or when the upstream answered)."""

    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class PlatformCall:
    """A platform client's request (docs/platforms.md): the front door that took it and
    the path the client sent."""

    name: str
    path: str


@dataclass(frozen=True, slots=True)
class SentRequest:
    """The request as a recording keeps it: no key, no auth header."""

    method: str
    path: str
    #: Query parameters (a repeated one as a list of values).
    query: Mapping[str, Any]
    #: The headers that matter (``anthropic-version``, ``anthropic-beta``, the matched ones).
    headers: Mapping[str, Any]
    #: The parsed JSON body; ``None`` without one, or when it was too large to keep.
    body: Any
    #: The body's size in bytes when it was too large to keep (``journal_body_limit``).
    body_omitted: int | None = None


@dataclass(frozen=True, slots=True)
class FiredFault:
    """A fault that fired: its spec, its kind, and the indices (in the stream the client got)
    of the events it inserted or changed, or that came late or never came because of it;
    ``None`` for ``status`` and ``latency``, which act on the whole response."""

    spec: str
    kind: str
    events: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class Window:
    """Two long texts around their first difference: its offset ``at`` (from 0), the text
    just before it (the same on both sides) and each side's text from it on."""

    at: int
    before: str
    incoming: str
    recorded: str


@dataclass(frozen=True, slots=True)
class Difference:
    """One way a request that missed differs from the closest interaction. A side that is
    absent is ``None``; ``shown`` says which (``(absent)``). ``window`` is set when both
    sides are long texts (``shown`` then quotes the window, not the texts)."""

    field: str
    incoming: Any
    recorded: Any
    shown: str
    window: Window | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """A client's name and release (``claude-cli``, ``2.1.337``); ``release`` may be unknown."""

    name: str
    release: str | None

    def __str__(self) -> str:
        return self.name if self.release is None else f"{self.name} {self.release}"


@dataclass(frozen=True, slots=True)
class Miss:
    """Why no interaction answered: ``no match`` (with the closest interaction, if there is
    one, and the differences from it) or ``sequence used up``."""

    reason: str
    cassette: str | None
    interaction: int | None
    #: ``file:line`` of the closest interaction.
    where: str | None
    differences: tuple[Difference, ...]
    #: The client that sent the request, and the one that recorded the closest interaction
    #: (each ``None`` when unknown).
    client: Client | None = None
    recorded_client: Client | None = None
