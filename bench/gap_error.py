"""The timing job's measure: each event's gap to its stream's first event against the
recorded gap, as percentiles (all events, and those due after the burst)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from http_conn import Conn


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def gap_errors(conns: list[Conn], at: list[float], kernel: bool) -> dict[str, float]:
    """Percentiles of |(arrival_i - arrival_0) - (at_i - at_0)| in ms, all and after the burst.

    "After the burst" keeps the events due after every stream's first event (plus one gap),
    i.e. once the server has started all N streams.
    """
    series = [c.ktimes if kernel else c.times for c in conns]
    gap = (at[1] - at[0]) / 1000 if len(at) > 1 else 0.0
    last_start = max((t[0] for t in series), default=0.0) + gap
    errors: list[float] = []
    steady: list[float] = []
    for times in series:
        first = times[0]
        for arrival, at_ms in zip(times[1:], at[1:], strict=True):
            due = (at_ms - at[0]) / 1000
            error = abs(arrival - first - due) * 1000
            errors.append(error)
            if first + due > last_start:
                steady.append(error)
    errors.sort()
    steady.sort()
    nan = float("nan")
    return {
        "samples": len(errors),
        "p50": percentile(errors, 50),
        "p99": percentile(errors, 99),
        "max": errors[-1] if errors else nan,
        "steady_samples": len(steady),
        "steady_p50": percentile(steady, 50),
        "steady_p99": percentile(steady, 99),
        "steady_max": steady[-1] if steady else nan,
    }
