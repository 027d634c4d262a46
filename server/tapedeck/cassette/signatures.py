"""The thinking blocks a library's cassettes hold, by signature: what validation checks a
thinking block sent back against (the API refuses one whose signature it never issued, or
whose text changed). Both what the cassettes answered (streamed or JSON) and what their
requests carried (a recorded loop's earlier turns) count.

Only digests are kept (a block's signature and text are kilobytes each), and the index is
kept up to date as cassettes come and go: a recording, or a file read again, changes one
cassette's part of it, never makes the whole library be read again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import CassetteError
from .lazy_events import LazyEvents
from .model import Cassette, Interaction
from .threads import reply_of


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
    events = interaction.response.events
    if isinstance(events, LazyEvents):  # found when the library loaded: no need to read it
        yield from events.signatures
        return
    reply = reply_of(interaction)
    if reply is not None:
        yield from _thinking(reply.get("content"))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class ThinkingIndex:
    """Thinking blocks by the digest of their signature: the digest of their text, and how
    many cassettes hold each (one leaving does not forget another's)."""

    def __init__(self) -> None:
        self._texts: dict[bytes, bytes] = {}
        self._holders: dict[bytes, int] = {}
        self._of: dict[str, tuple[bytes, ...]] = {}

    @classmethod
    def of(cls, cassettes: Mapping[str, Cassette]) -> ThinkingIndex:
        """The index of ``cassettes`` (each got whole: one not held is read again); one that
        cannot be read now is left out (it answers nothing but its error)."""
        index = cls()
        for name in list(cassettes):
            try:
                index.add(name, cassettes[name].interactions)
            except CassetteError:
                continue
        return index

    def add(self, name: str, interactions: Iterable[Interaction]) -> None:
        """Index cassette ``name``'s blocks, in place of any it had."""
        self.remove(name)
        signed = {_digest(s): _digest(t) for i in interactions for s, t in thinking_of(i)}
        for signature, text in signed.items():
            self._texts[signature] = text
            self._holders[signature] = self._holders.get(signature, 0) + 1
        self._of[name] = tuple(signed)

    def remove(self, name: str) -> None:
        """Forget cassette ``name``'s blocks (those another cassette holds stay)."""
        for signature in self._of.pop(name, ()):
            left = self._holders[signature] - 1
            if left:
                self._holders[signature] = left
            else:
                del self._holders[signature], self._texts[signature]

    def served(self, signature: str, text: str) -> bool:
        """Whether a cassette holds a thinking block with ``signature`` and ``text``."""
        return self._texts.get(_digest(signature)) == _digest(text)

    def __len__(self) -> int:
        return len(self._texts)
