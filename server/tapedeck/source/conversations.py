"""What a library's interactions said, as validation needs it: the thinking blocks served
(by signature) and the conversations their replies ended (by reply id, for message threads;
see :mod:`tapedeck.cassette.threads`).

A thinking block whose signature tapedeck never served, or whose text changed, would be
refused by the API; both what the cassettes answered (streamed or JSON) and what their
requests carried (a recorded loop's earlier turns) count. The thinking index is built on
first use and again after a recording changes the library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..cassette.library import CassetteLibrary
from ..cassette.model import Interaction
from ..cassette.threads import Thread, reply_of


def _thinking(blocks: Any) -> Iterable[tuple[str, str]]:
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, Mapping) and block.get("type") == "thinking":
            signature, text = block.get("signature"), block.get("thinking")
            if isinstance(signature, str) and isinstance(text, str):
                yield signature, text


def thinking_of(interaction: Interaction) -> Iterable[tuple[str, str]]:
    """Every ``(signature, thinking text)`` an interaction holds, asked or answered."""
    body = interaction.request.body
    messages = body.get("messages") if isinstance(body, Mapping) else None
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, Mapping):
            yield from _thinking(message.get("content"))
    reply = reply_of(interaction)
    if reply is not None:
        yield from _thinking(reply.get("content"))


class Conversations:
    """The index over a library, kept up to date with it."""

    def __init__(self, library: CassetteLibrary) -> None:
        self.library = library
        self._version = -1
        self._thinking: dict[str, str] = {}

    def thinking(self, signature: str) -> str | None:
        """The text of the thinking block served with ``signature``, if one was."""
        if self._version != self.library.version:
            known: dict[str, str] = {}
            for cassette in self.library.cassettes.values():
                for interaction in cassette.interactions:
                    known.update(thinking_of(interaction))
            self._thinking, self._version = known, self.library.version
        return self._thinking.get(signature)

    def thread(self, message_id: str) -> Thread | None:
        """The conversation the reply ``message_id`` ended, if a cassette holds it."""
        return self.library.conversation(message_id)
