"""The thinking blocks a library holds, by signature: what validation compares a request's
thinking blocks with (a block whose signature tapedeck never served, or whose text changed,
would be refused by the API).

Both what the cassettes answered (streamed ``thinking_delta`` + ``signature_delta``, or JSON
``thinking`` blocks) and what their requests carried (a recorded loop's earlier turns) count.
The index is built on first use and again after a recording changes the library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..cassette.library import CassetteLibrary
from ..cassette.model import Interaction


def _from_blocks(blocks: Any) -> Iterable[tuple[str, str]]:
    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, Mapping) and block.get("type") == "thinking":
            signature, text = block.get("signature"), block.get("thinking")
            if isinstance(signature, str) and isinstance(text, str):
                yield signature, text


def _from_events(interaction: Interaction) -> Iterable[tuple[str, str]]:
    texts: dict[object, list[str]] = {}
    for event in interaction.response.events or ():
        data = event.data
        if not isinstance(data, Mapping) or event.event != "content_block_delta":
            continue
        delta = data.get("delta")
        if not isinstance(delta, Mapping):
            continue
        index = data.get("index")
        if delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
            texts.setdefault(index, []).append(delta["thinking"])
        elif delta.get("type") == "signature_delta" and isinstance(delta.get("signature"), str):
            yield delta["signature"], "".join(texts.get(index, []))


def thinking_of(interaction: Interaction) -> Iterable[tuple[str, str]]:
    """Every ``(signature, thinking text)`` an interaction holds, asked or answered."""
    body = interaction.request.body
    messages = body.get("messages") if isinstance(body, Mapping) else None
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, Mapping):
            yield from _from_blocks(message.get("content"))
    response = interaction.response
    if response.events is not None:
        yield from _from_events(interaction)
    elif isinstance(response.body, Mapping):
        yield from _from_blocks(response.body.get("content"))


class ThinkingIndex:
    """``signature -> thinking text`` over a library, kept up to date with it."""

    def __init__(self, library: CassetteLibrary) -> None:
        self.library = library
        self._version = -1
        self._known: dict[str, str] = {}

    def __call__(self, signature: str) -> str | None:
        if self._version != self.library.version:
            known: dict[str, str] = {}
            for cassette in self.library.cassettes.values():
                for interaction in cassette.interactions:
                    known.update(thinking_of(interaction))
            self._known, self._version = known, self.library.version
        return self._known.get(signature)
