"""What a library's interactions said, as validation needs it: the thinking blocks served
(by signature) and the conversations their replies ended (by reply id, for message threads;
see :mod:`tapedeck.cassette.threads`).

A thinking block whose signature tapedeck never served, or whose text changed, would be
refused by the API; the library keeps the index of those its cassettes hold
(:mod:`tapedeck.cassette.signatures`).
"""

from __future__ import annotations

from ..cassette.library import CassetteLibrary
from ..cassette.threads import Thread


class Conversations:
    """The index over a library, kept up to date with it."""

    def __init__(self, library: CassetteLibrary) -> None:
        self.library = library

    def thinking_served(self, signature: str, text: str) -> bool:
        """Whether a cassette holds a thinking block with ``signature`` and ``text``
        (what it served, or a recorded loop sent back)."""
        return self.library.thinking_served(signature, text)

    def thread(self, message_id: str) -> Thread | None:
        """The conversation the reply ``message_id`` ended, if a cassette holds it."""
        return self.library.conversation(message_id)
