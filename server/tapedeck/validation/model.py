"""What validation works with: the setting, a broken rule, and what it needs to know."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from ..cassette.threads import Thread


class Validate(enum.StrEnum):
    """What a request that breaks a rule gets."""

    #: 400 ``invalid_request_error``, as the API would answer (when a cassette answers).
    ERROR = "error"
    #: Answered as usual; the server log says which rule it broke.
    WARN = "warn"
    #: Not checked.
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Broken:
    """A rule a request breaks: ``rule`` names it (docs/validation.md), ``message`` is what
    the 400 says (the API's wording where it is public)."""

    rule: str
    message: str


class Known(Protocol):
    """What validation needs to know beyond the request (see
    :class:`tapedeck.source.conversations.Conversations`)."""

    def thinking_served(self, signature: str, text: str) -> bool:
        """Whether tapedeck served (or holds) a thinking block with ``signature`` and
        ``text``."""

    def thread(self, message_id: str) -> Thread | None:
        """The conversation the reply ``message_id`` ended (what a thread continues)."""
