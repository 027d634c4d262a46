"""A stream plan: which bytes go out when, and how the body ends.

Replay turns a recorded response and a timing policy into a :class:`Plan`; fault shaping
(:mod:`tapedeck.shaping`) rewrites the plan; the writer (:mod:`tapedeck.responses`) sends it.
Times are seconds after the request arrived.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from .cassette import RecordedResponse, StreamEnd
from .timing import Timing


class Ending(enum.StrEnum):
    """How the body ends once the last step is sent."""

    #: Finish the chunked body normally.
    COMPLETE = "complete"
    #: Drop the connection without finishing the body.
    CUT = "cut"


@dataclass(frozen=True, slots=True)
class Step:
    """Bytes to send at ``at``. ``event``/``data`` say what they encode, for shaping."""

    at: float
    encoded: bytes
    event: str = ""
    data: object = None
    #: True for events of the source stream; False for what shaping inserted.
    source: bool = True

    def later(self, seconds: float) -> Step:
        return replace(self, at=self.at + seconds) if seconds else self


@dataclass(slots=True)
class Plan:
    """Everything the writer needs to send one event stream."""

    headers_at: float
    steps: list[Step] = field(default_factory=list)
    end_at: float = 0.0
    ending: Ending = Ending.COMPLETE


_plans: dict[tuple[int, Timing], tuple[RecordedResponse, Plan]] = {}


def cached_plan(response: RecordedResponse, timing: Timing) -> Plan:
    """:func:`plan_stream`, computed once per response and timing. Do not modify it:
    shaping builds a new plan."""
    key = (id(response), timing)
    found = _plans.get(key)
    if found is None or found[0] is not response:  # an id can be reused once freed
        if len(_plans) > 4096:
            _plans.clear()
        found = _plans[key] = (response, plan_stream(response, timing))
    return found[1]


def plan_stream(response: RecordedResponse, timing: Timing) -> Plan:
    """The plan that replays a recorded event stream with ``timing``."""
    events = response.events or ()
    times = timing.event_times(response)
    steps = [Step(t, e.encoded, e.event, e.data) for t, e in zip(times, events, strict=True)]
    end_at = timing.end_at(response, times[-1] if times else timing.headers_at(response))
    ending = Ending.CUT if response.end is StreamEnd.DISCONNECT else Ending.COMPLETE
    return Plan(timing.headers_at(response), steps, end_at, ending)
