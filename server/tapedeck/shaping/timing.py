"""Timing policies: when each part of a replayed response goes out.

A policy is parsed once from a spec string (``recorded``, ``speed=F``, ``fixed=MS``,
``instant``) and turns a recorded response into deadlines measured from the moment the
request arrived. Deadlines are absolute, so a late wake-up never delays the events after it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from ..cassette.model import RecordedResponse
from ..errors import SpecError

SPEC_HELP = "'recorded', 'speed=F' (F > 0), 'fixed=MS' (MS >= 0) or 'instant'"


def wait_problem(what: str, seconds: float, limit: float) -> str | None:
    """Why ``seconds`` of waiting is refused (more than ``limit``, the setting
    ``max_delay``), or ``None`` if it is allowed."""
    if seconds <= limit:  # False for NaN too
        return None
    return (
        f"{what} asks for a wait of {seconds:.3g} s; the longest wait allowed is {limit:g} s "
        "(setting max_delay)"
    )


class TimingKind(enum.StrEnum):
    RECORDED = "recorded"
    SPEED = "speed"
    FIXED = "fixed"
    INSTANT = "instant"


@dataclass(frozen=True, slots=True)
class Timing:
    """A parsed timing policy. ``value`` is the speed factor or the fixed gap in ms."""

    kind: TimingKind = TimingKind.RECORDED
    value: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> Timing:
        """Parse a spec; raise :class:`~tapedeck.errors.SpecError` (a ``ValueError``) naming
        the spec and the valid forms.

        >>> Timing.parse("speed=2")
        Timing(kind=<TimingKind.SPEED: 'speed'>, value=2.0)
        """
        text = spec.strip().lower()
        name, sep, arg = text.partition("=")
        if text in ("recorded", "instant"):
            return cls(TimingKind(text))
        if sep and name in ("speed", "fixed"):
            try:
                value = float(arg)
            except ValueError:
                value = math.nan
            if name == "speed" and math.isfinite(value) and value > 0:
                return cls(TimingKind.SPEED, value)
            if name == "fixed" and math.isfinite(value) and value >= 0:
                return cls(TimingKind.FIXED, value)
        raise SpecError(f"invalid timing {spec!r}: expected {SPEC_HELP}")

    def __str__(self) -> str:
        if self.kind in (TimingKind.SPEED, TimingKind.FIXED):
            return f"{self.kind}={self.value:g}"
        return str(self.kind)

    def over_limit(self, limit: float) -> str | None:
        """Why this spec is refused under ``max_delay`` = ``limit`` (a ``fixed`` gap longer
        than that), or ``None``. What ``speed`` makes of a recording is checked on its plan."""
        if self.kind is TimingKind.FIXED:
            return wait_problem(f"timing {self}", self.value / 1000, limit)
        return None

    @property
    def waits(self) -> bool:
        """False when nothing is ever delayed, so the whole body can go in one send."""
        return self.kind is not TimingKind.INSTANT

    def headers_at(self, response: RecordedResponse) -> float:
        """Seconds after the request arrived at which the headers go out."""
        if self.kind is TimingKind.RECORDED:
            return response.time_to_headers_ms / 1000
        if self.kind is TimingKind.SPEED:
            return response.time_to_headers_ms / 1000 / self.value
        return 0.0

    def event_times(self, response: RecordedResponse) -> list[float]:
        """Seconds after the request arrived at which each event goes out."""
        events = response.events or ()
        start = self.headers_at(response)
        if self.kind is TimingKind.FIXED:
            return [i * self.value / 1000 for i in range(len(events))]
        if self.kind is TimingKind.INSTANT:
            return [0.0] * len(events)
        scale = 1000 * (self.value if self.kind is TimingKind.SPEED else 1.0)
        return [start + e.at_ms / scale for e in events]

    def end_at(self, response: RecordedResponse, last_event_at: float) -> float:
        """Seconds after the request arrived at which the body ends (or the drop happens)."""
        if response.end_at_ms is None or self.kind in (TimingKind.FIXED, TimingKind.INSTANT):
            return last_event_at
        scale = 1000 * (self.value if self.kind is TimingKind.SPEED else 1.0)
        return max(last_event_at, self.headers_at(response) + response.end_at_ms / scale)
