"""The replies the library's cassettes hold, by message id: what a request continuing a
message thread from one of them continues (:mod:`.threads`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Cassette, Interaction
from .threads import Thread, ended


@dataclass(slots=True, eq=False)
class Reply:
    """A reply: its cassette, the request that asked for it (rebuilt), the interaction at
    ``index`` that answered, and the conversation it ended (made when first asked for)."""

    cassette: str
    asked: Any
    interaction: Interaction
    index: int
    thread: Thread | None = None


class Replies:
    """Replies by message id, and each cassette's message ids."""

    def __init__(self) -> None:
        self.by_id: dict[str, Reply] = {}
        self._ids: dict[str, list[str]] = {}

    def add(self, said: str, reply: Reply) -> None:
        """Know ``reply`` by its message id ``said``."""
        self.by_id[said] = reply
        self._ids.setdefault(reply.cassette, []).append(said)

    def remove(self, name: str) -> None:
        """Forget the replies of cassette ``name``."""
        for said in self._ids.pop(name, ()):
            if said in self.by_id and self.by_id[said].cassette == name:
                del self.by_id[said]

    def swap(self, name: str, cassette: Cassette, bare: bool = False) -> None:
        """The replies of ``name`` are now ``cassette``'s (the same requests, its responses
        dropped or read again; ``bare``: its requests dropped too, the library reads the
        file again before a conversation is asked of it): the conversations made from the
        old ones go."""
        for said in self._ids.get(name, ()):
            reply = self.by_id.get(said)
            if reply is not None and reply.cassette == name:
                reply.interaction, reply.thread = cassette.interactions[reply.index], None
                if bare:
                    reply.asked = None

    def thread(self, said: str) -> Thread | None:
        """The conversation the reply ``said`` ended, if one is known."""
        reply = self.by_id.get(said)
        if reply is None or reply.asked is None:  # unknown, or its request was dropped
            return None
        if reply.thread is None:
            reply.thread = ended(reply.asked, reply.interaction)
        return reply.thread
