"""The structure of a streamed Message: fold events into a Message, or split one into events.

``assemble`` does what a client does with a ``stream: true`` response: it folds the
``(event name, parsed data)`` pairs into the Message JSON object that the same request
without ``stream`` would have returned. ``synthesize`` goes the other way and produces a
realistic event stream for a Message, so that a cassette holding only a JSON body can be
replayed to a streaming client (it lives in :mod:`.stream_from_message`, and is imported
from here as before). For realistic messages ``assemble(synthesize(m)) == m``.

Pure functions over plain JSON values: no I/O, inputs are never mutated.

>>> events = synthesize({
...     "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
...     "content": [{"type": "text", "text": "Hello!"}],
...     "stop_reason": "end_turn", "stop_sequence": None,
...     "usage": {"input_tokens": 10, "output_tokens": 3},
... })
>>> [name for name, _ in events]  # doctest: +NORMALIZE_WHITESPACE
['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop',
 'message_delta', 'message_stop']
>>> assemble(events)["content"]
[{'type': 'text', 'text': 'Hello!'}]
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import StreamError
from .stream_from_message import STREAMED_INPUT_BLOCKS, split_text, synthesize

__all__ = ["STREAMED_INPUT_BLOCKS", "StreamError", "assemble", "split_text", "synthesize"]


def assemble(events: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Fold a stream of ``(event name, parsed data)`` into the final Message object.

    Events are routed by their name, as the SDKs do. ``message_start`` gives the message;
    ``content_block_start`` adds the block at its ``index``; deltas fill it in:
    ``text_delta`` appends to ``text``, ``thinking_delta`` to ``thinking``,
    ``citations_delta`` to ``citations``, ``signature_delta`` sets ``signature``, and the
    ``input_json_delta`` fragments are joined and parsed into ``input`` at
    ``content_block_stop`` (no text at all means ``{}``). A block whose stop never came keeps
    the ``input`` of its start event. ``message_delta`` sets its ``delta`` fields and merges
    its cumulative ``usage`` (later values replace earlier ones; a null never erases a value).
    ``ping``, unknown events and unknown delta types are ignored.

    Raises ``StreamError`` on an ``error`` event, and ``ValueError`` for a stream that does not
    start with ``message_start``, a delta or stop for a block that was never started, event
    data that is not an object, or tool input that is not valid JSON (naming the block index).

    >>> assemble([
    ...     ("message_start", {"type": "message_start", "message": {"id": "msg_1",
    ...         "content": [], "stop_reason": None, "usage": {"output_tokens": 1}}}),
    ...     ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ...     ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
    ...     ("content_block_stop", {"index": 0}),
    ...     ("message_delta", {"delta": {"stop_reason": "end_turn"},
    ...         "usage": {"output_tokens": 2}}),
    ...     ("message_stop", {"type": "message_stop"}),
    ... ])  # doctest: +NORMALIZE_WHITESPACE
    {'id': 'msg_1', 'content': [{'type': 'text', 'text': 'Hi'}], 'stop_reason': 'end_turn',
     'usage': {'output_tokens': 2}}
    """
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    json_bufs: dict[int, list[str]] = {}

    for name, data in events:
        if name == "error":
            raise StreamError(copy.deepcopy(data))
        if name not in _KNOWN_EVENTS:
            continue  # ping, message_stop and event types newer than this module
        if not isinstance(data, Mapping):
            raise ValueError(f"{name} event: data is not a JSON object: {data!r}")
        if message is None:
            if name != "message_start":
                raise ValueError(f"stream does not start with message_start: got {name} first")
            message = _start_message(data)
        elif name == "message_start":
            raise ValueError("second message_start event in one stream")
        elif name == "content_block_start":
            index = _index(name, data)
            if index in blocks:
                raise ValueError(f"content_block_start for block {index}, which already started")
            block = data.get("content_block")
            if not isinstance(block, Mapping):
                raise ValueError(f"content_block_start for block {index} has no content_block")
            blocks[index] = copy.deepcopy(dict(block))
        elif name == "content_block_delta":
            index = _index(name, data)
            _apply_delta(_started(blocks, index, name), index, data.get("delta"), json_bufs)
        elif name == "content_block_stop":
            index = _index(name, data)
            block = _started(blocks, index, name)
            if index in json_bufs:
                block["input"] = _parse_input(index, "".join(json_bufs.pop(index)))
        elif name == "message_delta":
            _merge(message, data.get("delta"))
            usage = data.get("usage")
            if isinstance(usage, Mapping):
                if not isinstance(message.get("usage"), dict):
                    message["usage"] = {}
                _merge(message["usage"], usage)

    if message is None:
        raise ValueError("stream has no message_start event")
    message["content"] = [*message["content"], *(blocks[i] for i in sorted(blocks))]
    return message


_KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
    }
)


def _start_message(data: Mapping[str, Any]) -> dict[str, Any]:
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise ValueError("message_start event has no message object")
    started = copy.deepcopy(dict(message))
    content = started.get("content")
    started["content"] = content if isinstance(content, list) else []
    return started


def _index(name: str, data: Mapping[str, Any]) -> int:
    index = data.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"{name} event has no integer index: {data!r}")
    return index


def _started(blocks: dict[int, dict[str, Any]], index: int, name: str) -> dict[str, Any]:
    try:
        return blocks[index]
    except KeyError:
        raise ValueError(f"{name} for block {index} before its content_block_start") from None


def _apply_delta(
    block: dict[str, Any], index: int, delta: Any, json_bufs: dict[int, list[str]]
) -> None:
    if not isinstance(delta, Mapping):
        raise ValueError(f"content_block_delta for block {index} has no delta object")
    try:
        _apply_known_delta(block, index, delta, json_bufs)
    except (KeyError, TypeError) as e:
        raise ValueError(f"content block {index}: malformed delta {delta!r}") from e


def _apply_known_delta(
    block: dict[str, Any], index: int, delta: Mapping[str, Any], json_bufs: dict[int, list[str]]
) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta["text"]
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta["thinking"]
    elif kind == "signature_delta":
        block["signature"] = delta["signature"]
    elif kind == "input_json_delta":
        fragment = delta["partial_json"]
        if not isinstance(fragment, str):
            raise TypeError("partial_json is not a string")
        json_bufs.setdefault(index, []).append(fragment)
    elif kind == "citations_delta":
        citations = block.get("citations")
        if not isinstance(citations, list):
            citations = block["citations"] = []
        citations.append(copy.deepcopy(delta["citation"]))


def _parse_input(index: int, text: str) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(
            f"content block {index}: tool input is not valid JSON ({e}): {text!r}"
        ) from e


def _merge(target: dict[str, Any], update: Any) -> None:
    """Copy ``update``'s fields into ``target``; a null only fills a field that is missing."""
    if not isinstance(update, Mapping):
        return
    for key, value in update.items():
        if value is not None or target.get(key) is None:
            target[key] = copy.deepcopy(value)
