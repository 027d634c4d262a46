"""The order of a recorded event stream: what an SDK can assemble, and what lint flags.

One check, two uses. The loader (so ``tapedeck serve``) refuses a stream that the SDKs'
stream helpers cannot assemble into a message — a finding that ``refuses``; ``tapedeck lint``
reports every finding, those and the ones a real stream would not have but an SDK survives.

What refuses, and why (the Python and TypeScript SDKs both fold the events into a message,
placing each started block at the next position of its ``content``):

- an event of the message before ``message_start`` (older Python SDKs raise ``Unexpected
  event order``; the others drop it, and a block started there is lost);
- a second ``message_start`` (the TypeScript SDK throws ``Unexpected event order``);
- a ``content_block_start`` whose ``index`` is not the next position, or starts a block
  again (later deltas land in another block, or past the end);
- a delta or stop for a block that has not started (the Python SDK raises ``IndexError``);
- an event name one typo away from a known one (``content_block_stopp``): the SDKs skip
  names they do not know, so the stream would silently lose it.

Whatever a valid recording holds is never refused: ``ping`` anywhere, an ``error`` event
anywhere (it ends what an SDK reads), unknown event names (the API may add event types),
data that is not a mapping or not of the event's type (fault cassettes use them on purpose),
a stream cut short (``end: disconnect``, or a recording that just stops).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .event_names import DELTA_BLOCKS, KNOWN_EVENTS, data_problem, misspelt

__all__ = [
    "DELTA_BLOCKS",
    "KNOWN_EVENTS",
    "Finding",
    "check_stream",
    "data_problem",
    "misspelt",
    "refusal",
]

_BLOCK_EVENTS = frozenset({"content_block_start", "content_block_delta", "content_block_stop"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of a stream: at event ``index`` (``None``: the stream as a whole).

    ``field`` is the event's field it is about (``"event"`` for a misspelt name, else
    ``""``), ``line_of`` the field whose line shows it; ``refuses``: an SDK cannot assemble
    the stream, so the loader refuses the cassette (lint reports every finding).
    """

    index: int | None
    message: str
    refuses: bool = False
    field: str = ""
    line_of: str = "event"

    def where(self, events: str) -> str:
        """Its place under ``events`` (``interactions[0].response.events``)."""
        if self.index is None:
            return events
        return f"{events}[{self.index}]" + (f".{self.field}" if self.field else "")


@dataclass
class _Order:
    """The protocol state of one stream, as its events are read in order."""

    #: Only refusals are wanted (the loader): stop at the first.
    quick: bool
    started: bool = False
    kinds: dict[int, str] = field(default_factory=dict)
    stopped: set[int] = field(default_factory=set)
    message_delta: bool = False
    message_stop: bool = False
    error: bool = False
    found: list[Finding] = field(default_factory=list)

    def add(self, i: int, message: str, refuses: bool = False, line_of: str = "event") -> None:
        # After message_stop only what refuses is said: "after message_stop" says the rest.
        if refuses or not (self.quick or self.message_stop):
            self.found.append(Finding(i, message, refuses, line_of=line_of))

    def event(self, i: int, name: str, data: Any) -> None:
        # Most events are a delta of an open block: the same as the way below, sooner.
        if (
            name == "content_block_delta"
            and self.started
            and not (self.message_stop or self.error)
            and isinstance(data, dict)
            and data.get("type") == name
        ):
            index = data.get("index")
            if type(index) is int and index in self.kinds and index not in self.stopped:
                if not self.quick:
                    self._delta_type(i, index, data)
                return
        if name not in KNOWN_EVENTS:
            meant = misspelt(name)
            if meant is not None:
                self.found.append(
                    Finding(
                        i,
                        f"unknown event name {name!r}; did you mean {meant!r}? (the SDKs skip "
                        "events they do not know, so this one would be lost)",
                        refuses=True,
                        field="event",
                    )
                )
                name = meant  # read on as meant: what follows is not its fault
        problem = data_problem(name, data) if name in KNOWN_EVENTS else None
        if problem:
            self.add(i, problem, line_of="data")
            return
        if name == "ping":
            return
        if self.error:  # an SDK reads no further
            self.add(i, f"{name} after the error event (an error event ends the stream)")
            return
        if self.message_stop and not self.quick:
            self.found.append(Finding(i, f"{name} after message_stop"))
        if name == "error":
            self.error = True
        elif name == "message_start":
            if self.started:
                self.add(
                    i,
                    "second message_start (a stream holds one message: the TypeScript SDK "
                    "throws 'Unexpected event order'); remove it, or give the second message "
                    "an interaction of its own",
                    refuses=True,
                )
            self.started = True
        elif name not in KNOWN_EVENTS:
            if not self.started:
                self.add(i, f"{name} before message_start (message_start must come first)")
        else:
            if not self.started:
                self.add(
                    i,
                    f"{name} before message_start (an SDK builds the message from "
                    "message_start: it fails on this event or drops it); put message_start "
                    "first",
                    refuses=True,
                )
            if name in _BLOCK_EVENTS:
                self._block_event(i, name, data)
            elif name == "message_delta":
                self._open_blocks(i, name)
                self.message_delta = True
            else:
                self._open_blocks(i, name)
                if not self.message_delta:
                    self.add(i, "message_stop without a message_delta before it")
                self.message_stop = True

    def _open_blocks(self, i: int, name: str) -> None:
        for index in sorted(set(self.kinds) - self.stopped):
            self.add(i, f"{name} while block {index} is not stopped")
            self.stopped.add(index)

    def _block_event(self, i: int, name: str, data: dict[str, Any]) -> None:
        index = data.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            self.add(i, f"{name} without an integer index")
            return
        if name == "content_block_start":
            self._block_start(i, index, data.get("content_block"))
            return
        if index not in self.kinds:
            self.add(
                i,
                f"{name} for block {index} before its content_block_start (an SDK assembling "
                "the message fails here: the Python SDK raises IndexError); move block "
                f"{index}'s content_block_start before it",
                refuses=True,
            )
            return
        if index in self.stopped:
            what = "stopped twice" if name == "content_block_stop" else "after its stop"
            self.add(i, f"{name} for block {index} {what}")
            return
        if name == "content_block_stop":
            self.stopped.add(index)
        elif not self.quick:
            self._delta_type(i, index, data)

    def _delta_type(self, i: int, index: int, data: dict[str, Any]) -> None:
        delta = data.get("delta")
        dtype = delta.get("type") if isinstance(delta, dict) else None
        if not isinstance(dtype, str):
            self.add(i, f"content_block_delta for block {index} has no delta type")
            return
        allowed = DELTA_BLOCKS.get(dtype)
        kind = self.kinds[index]
        if allowed is not None and kind != "?" and kind not in allowed:
            self.add(i, f"{dtype} for block {index}, a {kind} block")

    def _block_start(self, i: int, index: int, block: Any) -> None:
        if self.message_delta:
            self.add(i, f"content_block_start for block {index} after message_delta")
        if index in self.kinds:
            self.add(
                i,
                f"content_block_start for block {index}, which already started (an SDK "
                "would add a second block and shift the later ones); remove one of them",
                refuses=True,
            )
            return
        expected = len(self.kinds)
        if index != expected:
            self.add(
                i,
                f"content_block_start for block {index}, expected {expected} (an SDK puts each "
                "started block at the next position, so this block's events would reach "
                "another block or none: IndexError); number the blocks 0, 1, 2, ... in the "
                "order they start",
                refuses=True,
            )
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            self.add(i, f"content_block_start for block {index} has no content_block")
            self.kinds[index] = "?"
        else:
            self.kinds[index] = block["type"]

    def finish(self, end: str) -> None:
        if self.error or self.message_stop or end == "disconnect" or self.quick:
            return
        self.found.append(
            Finding(
                None,
                "the stream ends without message_stop (expected message_stop last, an error "
                "event, or 'end: disconnect')",
            )
        )


def check_stream(events: Iterable[tuple[str, Any]], end: str = "complete") -> list[Finding]:
    """Every finding of a stream of ``(event name, data)``, in event order; one about the
    stream's end has ``index`` ``None`` (lint shows it at the last event's line)."""
    order = _Order(quick=False)
    for i, (name, data) in enumerate(events):
        order.event(i, name, data)
    order.finish(end)
    return order.found


def refusal(events: Iterable[tuple[str, Any]]) -> Finding | None:
    """The first finding of a stream that an SDK cannot assemble, or ``None``.

    >>> refusal([("message_start", {"type": "message_start", "message": {}}),
    ...          ("content_block_delta", {"type": "content_block_delta", "index": 0,
    ...                                   "delta": {"type": "text_delta", "text": "Hi"}})]).index
    1
    """
    order = _Order(quick=True)
    for i, (name, data) in enumerate(events):
        order.event(i, name, data)
        if order.found:
            return order.found[0]
    return None
