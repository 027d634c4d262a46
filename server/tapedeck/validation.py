"""Requests checked as the Messages API checks them, so a test cannot pass on a request
production would reject.

Each rule answers what the API answers — 400 ``invalid_request_error`` — with a message in
the API's wording where it is public, and cites the documentation it comes from in
docs/validation.md. Only ``POST /v1/messages`` is checked. The setting ``validate``
(``error``, ``warn``, ``off``) decides what a broken rule does: when a cassette would answer,
``error`` answers the 400 before matching; where the upstream answers, it judges, so a broken
rule is at most logged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The smallest thinking budget the API accepts.
MIN_BUDGET_TOKENS = 1024
_THINKING = ("thinking", "redacted_thinking")
_EXTENDED_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


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
    """A rule a request breaks: ``rule`` names it (docs/validation.md), ``message`` is the
    API's."""

    rule: str
    message: str


#: What validation needs to know beyond the request: thinking blocks tapedeck served (or
#: holds), as ``signature -> thinking text``; ``None`` when nothing is known.
KnownThinking = Callable[[str], str | None]


def check(body: object, betas: str | None, known: KnownThinking) -> tuple[Broken, ...]:
    """Every rule the body of a ``POST /v1/messages`` breaks, in the order the API checks."""
    if not isinstance(body, Mapping):
        return ()
    found = list(_required(body))
    messages = body.get("messages")
    if isinstance(messages, list):
        found += _tool_pairs(messages)
        thinking = body.get("thinking")
        if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
            found += _thinking_first(messages)
            found += _thinking_unchanged(messages, known)
    found += _budget(body, betas)
    found += _temperature(body)
    found += _tool_choice(body)
    return tuple(found)


def _required(body: Mapping[str, Any]) -> Iterator[Broken]:
    for field in ("max_tokens", "messages", "model"):
        if field not in body:
            yield Broken("required", f"{field}: Field required")


def _blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, Mapping) else None
    return content if isinstance(content, list) else []


def _of_type(blocks: Sequence[Any], kind: str) -> list[tuple[int, Mapping[str, Any]]]:
    return [
        (i, b) for i, b in enumerate(blocks) if isinstance(b, Mapping) and b.get("type") == kind
    ]


def _tool_pairs(messages: Sequence[Any]) -> Iterator[Broken]:
    """Every ``tool_use`` answered by a ``tool_result`` in the next message, and every
    ``tool_result`` answering a ``tool_use`` of the message before."""
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
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
        elif role == "user":
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
    if not isinstance(before, Mapping) or before.get("role") != "assistant":
        return None
    if not _of_type(_blocks(last), "tool_result"):
        return None
    return len(messages) - 2


def _thinking_first(messages: Sequence[Any]) -> Iterator[Broken]:
    """With thinking on, the assistant turn a tool loop continues starts with its thinking."""
    n = _last_tool_turn(messages)
    if n is None:
        return
    message = messages[n]
    content = message.get("content") if isinstance(message, Mapping) else None
    first = "text" if isinstance(content, str) else None
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
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
        f"{_EXTENDED_THINKING_DOCS}",
    )


def _thinking_unchanged(messages: Sequence[Any], known: KnownThinking) -> Iterator[Broken]:
    """The latest assistant message's thinking blocks are as they were served."""
    latest = next(
        (
            n
            for n in range(len(messages) - 1, -1, -1)
            if isinstance(messages[n], Mapping) and messages[n].get("role") == "assistant"
        ),
        None,
    )
    if latest is None:
        return
    for i, block in _of_type(_blocks(messages[latest]), "thinking"):
        signature, text = block.get("signature"), block.get("thinking")
        served = known(signature) if isinstance(signature, str) else None
        if served is None or served != text:
            yield Broken(
                "thinking_unchanged",
                f"messages.{latest}.content.{i}: `thinking` or `redacted_thinking` blocks in "
                "the latest assistant message cannot be modified. These blocks must remain as "
                "they were in the original response.",
            )


def _budget(body: Mapping[str, Any], betas: str | None) -> Iterator[Broken]:
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping) or thinking.get("type") != "enabled":
        return
    budget, max_tokens = thinking.get("budget_tokens"), body.get("max_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return
    if budget < MIN_BUDGET_TOKENS:
        yield Broken(
            "budget_tokens",
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to "
            f"{MIN_BUDGET_TOKENS}",
        )
    interleaved = betas is not None and "interleaved-thinking" in betas
    if isinstance(max_tokens, int) and budget >= max_tokens and not interleaved:
        yield Broken(
            "budget_tokens",
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {_EXTENDED_THINKING_DOCS}#max-tokens-and-context-window-size",
        )


def _temperature(body: Mapping[str, Any]) -> Iterator[Broken]:
    value = body.get("temperature")
    if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value <= 1:
        yield Broken("temperature", "temperature: range: 0..1")


def _tool_choice(body: Mapping[str, Any]) -> Iterator[Broken]:
    choice = body.get("tool_choice")
    if not isinstance(choice, Mapping) or choice.get("type") != "tool":
        return
    tools = body.get("tools")
    names = (
        {t.get("name") for t in tools if isinstance(t, Mapping)}
        if isinstance(tools, list)
        else set()
    )
    if choice.get("name") not in names:
        yield Broken(
            "tool_choice",
            f"tool_choice.name: tool {choice.get('name')!r} is not one of the tools in the "
            "request's `tools`",
        )
