"""Message threads: a request matched on the conversation it continues, not on how it was sent.

With a message thread (``thread: {type: create}``, then ``{type: continue,
previous_message_id}``) a client sends only the messages since the previous reply, and the
API rebuilds the conversation from the thread. The response is the usual message, so a
thread is a way of sending a conversation, not part of it: a loop recorded over a thread
replays to the same loop without one, and a cassette written by hand (or recorded without
a thread) answers the SDK's tool runner, which uses threads by default.

So before matching (and validation) a request is *rebuilt*: ``thread`` dropped and, on a
continuation from a reply tapedeck knows, the conversation that reply ended (with its
``system`` and ``tools``) put before the request's messages. A continuation from a reply
tapedeck does not know stays as it was sent. The ``message-threads-*`` beta flag is left out
of matching for the same reason (:mod:`.matching`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import StreamError
from .message_stream import assemble
from .model import Interaction


@dataclass(frozen=True, slots=True)
class Thread:
    """The conversation a reply ended: every message (the reply last), and the ``system``
    and ``tools`` it was asked with (``None`` when absent)."""

    messages: tuple[Any, ...]
    system: Any = None
    tools: Any = None


#: The conversation a reply id ended, if it is known.
Lookup = Callable[[str], Thread | None]


def thread_of(body: Any) -> Mapping[str, Any] | None:
    """A request body's ``thread`` field, if it is one."""
    thread = body.get("thread") if isinstance(body, dict) else None
    return thread if isinstance(thread, dict) else None


def continues(body: Any) -> str | None:
    """The reply id a thread continuation continues from, if ``body`` is one."""
    thread = thread_of(body)
    if thread is None or thread.get("type") != "continue":
        return None
    previous = thread.get("previous_message_id")
    return previous if isinstance(previous, str) else None


def rebuilt(body: Any, lookup: Lookup) -> Any:
    """``body`` as the model sees it (see the module docstring)."""
    thread = thread_of(body)
    if thread is None:
        return body
    assert isinstance(body, dict)
    if thread.get("type") == "create":
        # A thread being created: the request is the whole conversation.
        return {k: v for k, v in body.items() if k != "thread"}
    previous = continues(body)
    if previous is None:  # not a thread this tapedeck knows how to read: as sent
        return body
    held = lookup(previous)
    messages = body.get("messages")
    if held is None or not isinstance(messages, list):
        return body
    whole = {k: v for k, v in body.items() if k != "thread"}
    whole["messages"] = [*held.messages, *messages]
    for field, value in (("system", held.system), ("tools", held.tools)):
        if value is not None:
            whole[field] = value
    return whole


def reply_id(interaction: Interaction) -> str | None:
    """The id of the message an interaction answered, read without assembling the reply."""
    response = interaction.response
    if response.status != 200:
        return None
    if response.events is not None:
        first = response.events[0].data if response.events else None
        message = first.get("message") if isinstance(first, dict) else None
        found = message.get("id") if isinstance(message, dict) else None
    elif isinstance(response.body, dict) and response.body.get("type") == "message":
        found = response.body.get("id")
    else:
        found = None
    return found if isinstance(found, str) else None


def reply_of(interaction: Interaction) -> Mapping[str, Any] | None:
    """The message an interaction answered (assembled from its events when it streamed)."""
    response = interaction.response
    if response.events is not None:
        try:
            return assemble((event.event, event.data) for event in response.events)
        except (ValueError, StreamError):  # a stream that is cut or ends in an error event
            return None
    body = response.body
    return body if isinstance(body, dict) and body.get("type") == "message" else None


def ended(asked: Any, interaction: Interaction) -> Thread | None:
    """The conversation ``interaction``'s reply ended, ``asked`` being its rebuilt request."""
    reply = reply_of(interaction)
    messages = asked.get("messages") if isinstance(asked, dict) else None
    if reply is None or not isinstance(messages, list):
        return None
    said = {"role": "assistant", "content": reply.get("content", [])}
    return Thread((*messages, said), asked.get("system"), asked.get("tools"))
