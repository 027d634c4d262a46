"""What a response reports it used: the ``usage`` of a Message, as a quota counts it.

A stream reports usage in ``message_start`` (the message's ``usage``) and ``message_delta``
(cumulative counts: later values replace earlier ones); a JSON Message in its ``usage``.
:class:`UsageMeter` reads it from a live stream's events as they pass.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping

from ..cassette.model import RecordedResponse
from ..shaping.quota import Cost

_COUNTED = ("input_tokens", "cache_creation_input_tokens", "output_tokens")


class UsageMeter:
    """Collects the usage counts a response reports, event by event or from a whole body."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def event(self, name: str, data: object) -> None:
        """Read one event's usage (``message_start`` and ``message_delta`` carry it)."""
        if not isinstance(data, Mapping):
            return
        if name == "message_start":
            message = data.get("message")
            self.usage(message.get("usage") if isinstance(message, Mapping) else None)
        elif name == "message_delta":
            self.usage(data.get("usage"))

    def body(self, data: object) -> None:
        """Read a JSON Message's usage."""
        if isinstance(data, Mapping):
            self.usage(data.get("usage"))

    def raw_body(self, payload: bytes) -> None:
        """Read a JSON Message's usage from its bytes (anything else reports none)."""
        with contextlib.suppress(ValueError, RecursionError):
            self.body(json.loads(payload))

    def usage(self, usage: object) -> None:
        if isinstance(usage, Mapping):
            for key in _COUNTED:
                value = usage.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    self.counts[key] = value

    def cost(self) -> Cost:
        """The usage as a quota takes it: input tokens with those written to the cache."""
        counts = self.counts
        return Cost(
            requests=1,
            input_tokens=counts.get("input_tokens", 0)
            + counts.get("cache_creation_input_tokens", 0),
            output_tokens=counts.get("output_tokens", 0),
        )


def usage_of(response: RecordedResponse) -> Cost:
    """What answering with ``response`` takes from a quota."""
    meter = UsageMeter()
    if response.events is not None:
        for event in response.events:
            meter.event(event.event, event.data)
    else:
        meter.body(response.body)
    return meter.cost()
