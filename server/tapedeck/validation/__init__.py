"""Requests checked as the Messages API checks them, so a test cannot pass on a request
production would reject.

Each rule answers what the API answers — 400 ``invalid_request_error`` — with a message in
the API's wording where it is public, and cites the documentation it comes from in
docs/validation.md. Only ``POST /v1/messages`` is checked, by the rules of the API version
its ``anthropic-version`` header names. The setting ``validate`` (``error``, ``warn``,
``off``) decides what a broken rule does: when a cassette would answer, ``error`` answers the
400 before matching; where the upstream answers, it judges, so a broken rule is at most
logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..cassette.threads import continues, rebuilt
from .conversation import (
    citations_in_user,
    documents_in_assistant,
    thinking_first,
    thinking_unchanged,
    tool_pairs,
)
from .fields import MIN_BUDGET_TOKENS, SAMPLING_REMOVED, budget, required, sampling, thread_fields
from .fields import tool_choice as named_tool
from .model import Broken, Known, Validate

__all__ = ["MIN_BUDGET_TOKENS", "Broken", "Known", "Validate", "check"]


def check(
    body: object, betas: str | None, known: Known, version: str | None = None
) -> tuple[Broken, ...]:
    """Every rule the body of a ``POST /v1/messages`` breaks, in the order the API checks;
    ``version`` is the request's ``anthropic-version`` (``None``: 2023-06-01's rules).

    A message-thread continuation is checked as the API checks it: on the conversation the
    thread holds followed by the request's messages (indices count the whole of it). When
    the thread is not known, its first message's tool results are taken on trust.
    """
    if not isinstance(body, dict):
        return ()
    found = [*required(body), *thread_fields(body)]
    body, whole = _rebuilt(body, known)
    messages = body.get("messages")
    if isinstance(messages, list):
        found += tool_pairs(messages, whole)
        thinking = body.get("thinking")
        mode = thinking.get("type") if isinstance(thinking, dict) else None
        if mode == "enabled":
            found += thinking_first(messages)
        if mode in ("enabled", "adaptive"):
            # Adaptive thinking may skip thinking on a turn: a tool loop's turn may then
            # start without it, but a block it did think must come back unchanged.
            found += thinking_unchanged(messages, known)
        if version is not None and version >= SAMPLING_REMOVED:
            found += documents_in_assistant(messages)
            found += citations_in_user(messages)
    found += budget(body, betas)
    found += sampling(body, version)
    found += named_tool(body)
    return tuple(found)


def _rebuilt(body: Mapping[str, Any], known: Known) -> tuple[Mapping[str, Any], bool]:
    """The body as the API checks it, and whether all of its conversation is known."""
    previous = continues(body)
    if previous is not None and known.thread(previous) is None:
        return body, False
    whole = rebuilt(body, known.thread)
    return (whole if isinstance(whole, dict) else body), True
