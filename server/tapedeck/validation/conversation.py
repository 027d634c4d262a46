"""The rules on a conversation: tool calls answered, thinking kept in a tool loop, and the
content API version 2026-10-21 refuses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .model import Broken, Known

_THINKING = ("thinking", "redacted_thinking")
EXTENDED_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def _blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, list) else []


def _of_type(blocks: Sequence[Any], kind: str) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, b) for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == kind]


def tool_pairs(messages: Sequence[Any], whole: bool) -> Iterator[Broken]:
    """Every ``tool_use`` answered by a ``tool_result`` in the next message, and every
    ``tool_result`` answering a ``tool_use`` of the message before (the first message's
    on trust when the conversation before it is not ``whole``ly known)."""
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            asked = [b.get("id") for _, b in _of_type(_blocks(message), "tool_use")]
            if not asked:
                continue
            following = messages[n + 1] if n + 1 < len(messages) else None
            if following is None:
                continue  # the last message: a prefill waiting for its own answer
            answered = {
                b.get("tool_use_id") for _, b in _of_type(_blocks(following), "tool_result")
            }
            missing = [str(i) for i in asked if i not in answered]
            if missing:
                yield Broken(
                    "tool_result_follows",
                    f"messages.{n}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message.",
                )
        elif role == "user" and (whole or n > 0):
            previous = messages[n - 1] if n > 0 else None
            asked_before = {b.get("id") for _, b in _of_type(_blocks(previous), "tool_use")}
            for i, block in _of_type(_blocks(message), "tool_result"):
                if block.get("tool_use_id") not in asked_before:
                    yield Broken(
                        "tool_use_precedes",
                        f"messages.{n}.content.{i}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous "
                        "message.",
                    )


def _last_tool_turn(messages: Sequence[Any]) -> int | None:
    """The assistant message whose tool calls the last user message answers, if it does."""
    if len(messages) < 2:
        return None
    last, before = messages[-1], messages[-2]
    if not isinstance(before, dict) or before.get("role") != "assistant":
        return None
    if not _of_type(_blocks(last), "tool_result"):
        return None
    return len(messages) - 2


def thinking_first(messages: Sequence[Any]) -> Iterator[Broken]:
    """With thinking on, the assistant turn a tool loop continues starts with its thinking."""
    n = _last_tool_turn(messages)
    if n is None:
        return
    message = messages[n]
    content = message.get("content") if isinstance(message, dict) else None
    first = "text" if isinstance(content, str) else None
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = str(content[0].get("type"))
    if first in _THINKING:
        return
    yield Broken(
        "thinking_first",
        f"messages.{n}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        f"`{first or 'nothing'}`. When `thinking` is enabled, a final `assistant` message must "
        "start with a thinking block (preceding the lastmost set of `tool_use` and "
        "`tool_result` blocks). We recommend you include thinking blocks from previous turns. "
        "To avoid this requirement, disable `thinking`. Please consult our documentation at "
        f"{EXTENDED_THINKING_DOCS}",
    )


def thinking_unchanged(messages: Sequence[Any], known: Known) -> Iterator[Broken]:
    """The latest assistant message's thinking blocks are as they were served."""
    latest = next(
        (
            n
            for n in range(len(messages) - 1, -1, -1)
            if isinstance(messages[n], dict) and messages[n].get("role") == "assistant"
        ),
        None,
    )
    if latest is None:
        return
    for i, block in _of_type(_blocks(messages[latest]), "thinking"):
        signature, text = block.get("signature"), block.get("thinking")
        if not (
            isinstance(signature, str)
            and isinstance(text, str)
            and known.thinking_served(signature, text)
        ):
            yield Broken(
                "thinking_unchanged",
                f"messages.{latest}.content.{i}: `thinking` or `redacted_thinking` blocks in "
                "the latest assistant message cannot be modified. These blocks must remain as "
                "they were in the original response.",
            )


def _roles(messages: Sequence[Any], role: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for n, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == role:
            yield n, message


def documents_in_assistant(messages: Sequence[Any]) -> Iterator[Broken]:
    """2026-10-21: no ``document`` block directly in an assistant message."""
    for n, message in _roles(messages, "assistant"):
        for i, _ in _of_type(_blocks(message), "document"):
            yield Broken(
                "assistant_document",
                f"messages.{n}.content.{i}: `document` blocks are not allowed in `assistant` "
                "messages in API version 2026-10-21",
            )


def citations_in_user(messages: Sequence[Any]) -> Iterator[Broken]:
    """2026-10-21: no ``text`` block with citations in a user message, directly or inside a
    ``search_result`` block."""
    for n, message in _roles(messages, "user"):
        for i, block in enumerate(_blocks(message)):
            if not isinstance(block, dict):
                continue
            inner = block.get("content")
            nested = block.get("type") == "search_result" and isinstance(inner, list)
            texts: list[Any] = inner if nested and isinstance(inner, list) else [block]
            for j, text in enumerate(texts):
                if not isinstance(text, dict) or text.get("type") != "text":
                    continue
                if text.get("citations"):
                    where = f"messages.{n}.content.{i}" + (f".content.{j}" if nested else "")
                    yield Broken(
                        "user_citations",
                        f"{where}.citations: `text` blocks in `user` messages cannot carry "
                        "citations in API version 2026-10-21",
                    )
