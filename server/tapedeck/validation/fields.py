"""The rules on a request's fields: the required ones, a thread continuation's, the thinking
budget, sampling (by API version) and ``tool_choice``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..cassette.threads import continues, thread_of
from .conversation import EXTENDED_THINKING_DOCS
from .model import Broken

#: The smallest thinking budget the API accepts.
MIN_BUDGET_TOKENS = 1024
#: The API version that removed the sampling parameters.
SAMPLING_REMOVED = "2026-10-21"
SAMPLING = ("temperature", "top_p", "top_k")


def required(body: Mapping[str, Any]) -> Iterator[Broken]:
    for field in ("max_tokens", "messages", "model"):
        if field not in body:
            yield Broken("required", f"{field}: Field required")


def thread_fields(body: Mapping[str, Any]) -> Iterator[Broken]:
    thread = thread_of(body)
    if thread is None or thread.get("type") != "continue":
        return
    if continues(body) is None:
        yield Broken("thread_fields", "thread.continue.previous_message_id: Field required")
    for field in ("system", "tools"):
        if field in body:
            yield Broken(
                "thread_fields",
                f"{field}: not allowed when continuing a thread; the thread keeps the "
                "`system` and `tools` of the request that created it",
            )


def budget(body: Mapping[str, Any], betas: str | None) -> Iterator[Broken]:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
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
            f"documentation at {EXTENDED_THINKING_DOCS}#max-tokens-and-context-window-size",
        )


def sampling(body: Mapping[str, Any], version: str | None) -> Iterator[Broken]:
    """From 2026-10-21 no sampling parameter at all; before it, ``temperature`` in 0..1."""
    if version is not None and version >= SAMPLING_REMOVED:
        for field in SAMPLING:
            if field in body:
                yield Broken(
                    "sampling_removed",
                    f"{field}: not supported in API version {version}: the `temperature`, "
                    "`top_p` and `top_k` parameters were removed in 2026-10-21",
                )
        return
    value = body.get("temperature")
    if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value <= 1:
        yield Broken("temperature", "temperature: range: 0..1")


def tool_choice(body: Mapping[str, Any]) -> Iterator[Broken]:
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return
    tools = body.get("tools")
    names = (
        {t.get("name") for t in tools if isinstance(t, dict)} if isinstance(tools, list) else set()
    )
    if choice.get("name") not in names:
        yield Broken(
            "tool_choice",
            f"tool_choice.name: tool {choice.get('name')!r} is not one of the tools in the "
            "request's `tools`",
        )
