"""Fault specs: what to break in a response, parsed into typed values at the edge.

A spec is ``KIND[:key=value[,key=value...]]``; several are joined with ``;``::

    status:code=529,times=2,retry_after_ms=10
    ping:every=5; overloaded:after=20,p=0.5,seed=7

Every kind also takes ``p`` (probability, 0..1), ``times`` (apply to the first N requests it
could apply to, then stop) and ``seed`` (reproducible ``p`` decisions per test id). A
``quota`` (``quota:requests=50/60s,output_tokens=8000/1m``) is a set of limits rather than a
break: see :mod:`tapedeck.shaping.quota`.
:func:`parse_faults` raises :class:`FaultSpecError` naming the spec, the bad part and the
valid choices.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import FaultSpecError
from .rates import Rate, parse_rate
from .timing import wait_problem


class FaultKind(enum.StrEnum):
    PING = "ping"
    ERROR = "error"
    OVERLOADED = "overloaded"
    DISCONNECT = "disconnect"
    TRUNCATE = "truncate"
    STATUS = "status"
    LATENCY = "latency"
    STALL = "stall"
    GARBLE = "garble"
    QUOTA = "quota"


#: Kinds that also make sense for a non-streaming response; the rest shape event streams.
WHOLE_RESPONSE_KINDS = frozenset({FaultKind.STATUS, FaultKind.LATENCY, FaultKind.QUOTA})
#: A quota's limits: the key in the spec and the Fault field are the same.
QUOTA_LIMITS = ("requests", "input_tokens", "output_tokens", "tokens")


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault. Only the fields its kind uses are set; the rest keep defaults."""

    kind: FaultKind
    text: str
    #: ping: after every N events / whenever idle this long.
    every: int | None = None
    interval_ms: float | None = None
    #: error, overloaded, disconnect, truncate, stall, garble: after this many events.
    after: int = 0
    #: disconnect: after this many body bytes instead.
    after_bytes: int | None = None
    #: error, overloaded, status.
    error_type: str = "overloaded_error"
    message: str | None = None
    #: status.
    code: int = 529
    retry_after: float | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None
    #: latency, stall.
    ms: float = 0.0
    #: quota: the limits (at least one).
    requests: Rate | None = None
    input_tokens: Rate | None = None
    output_tokens: Rate | None = None
    tokens: Rate | None = None
    #: quota: whether its 429s say when to retry (``retry_after=false``: only the reset dates).
    sends_retry_after: bool = True
    #: gate: probability, how many requests, seed for the probability.
    p: float = 1.0
    times: int | None = None
    seed: str | None = None

    def __hash__(self) -> int:
        # The spec text decides every field: hashing it alone is cheaper than the fields.
        return hash(self.text)

    @property
    def wait(self) -> float:
        """The seconds this fault holds a response back (``latency``, ``stall``), else 0."""
        return self.ms / 1000 if self.kind in (FaultKind.LATENCY, FaultKind.STALL) else 0.0

    @property
    def streams_only(self) -> bool:
        """True if the fault only makes sense on an event stream."""
        return self.kind not in WHOLE_RESPONSE_KINDS


def _count(key: str, value: str, minimum: int = 0) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _number(value: str, ok: Callable[[float], bool], problem: str) -> float:
    """``value`` as a finite number that passes ``ok``; else ValueError with ``problem``."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not ok(number):
        raise ValueError(f"{problem}, got {value!r}")
    return number


def _ms(key: str, value: str) -> float:
    return _number(value, lambda n: n >= 0, f"{key} must be a number of milliseconds >= 0")


def _seconds(key: str, value: str) -> float:
    return _number(value, lambda n: n >= 0, f"{key} must be a number of seconds >= 0")


def _positive_ms(key: str, value: str) -> float:
    return _number(value, lambda n: n > 0, f"{key} must be a number of milliseconds > 0")


def _probability(key: str, value: str) -> float:
    return _number(value, lambda n: 0 <= n <= 1, "p must be a probability from 0 to 1")


def _status_code(key: str, value: str) -> int:
    if not value.isdigit() or not 400 <= int(value) <= 599:
        raise ValueError(f"code must be an HTTP error status from 400 to 599, got {value!r}")
    return int(value)


def _bool(key: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value.lower() == "true"


def _text(key: str, value: str) -> str:
    return value


def _error_type(key: str, value: str) -> str:
    if not value or not all(c.isalnum() or c == "_" for c in value):
        raise ValueError(f"type must be an error type such as overloaded_error, got {value!r}")
    return value


_Parser = Callable[[str, str], Any]
_GATE: dict[str, tuple[str, _Parser]] = {
    "p": ("p", _probability),
    "times": ("times", lambda k, v: _count(k, v, 1)),
    "seed": ("seed", _text),
}
#: Per kind: key in the spec -> (Fault field, parser).
_KEYS: dict[FaultKind, dict[str, tuple[str, _Parser]]] = {
    FaultKind.PING: {
        "every": ("every", lambda k, v: _count(k, v, 1)),
        "interval": ("interval_ms", _positive_ms),
    },
    FaultKind.ERROR: {
        "after": ("after", _count),
        "type": ("error_type", _error_type),
        "message": ("message", _text),
    },
    FaultKind.OVERLOADED: {"after": ("after", _count)},
    FaultKind.DISCONNECT: {"after": ("after", _count), "after_bytes": ("after_bytes", _count)},
    FaultKind.TRUNCATE: {"after": ("after", _count)},
    FaultKind.STATUS: {
        "code": ("code", _status_code),
        "retry_after": ("retry_after", _seconds),
        "retry_after_ms": ("retry_after_ms", _ms),
        "should_retry": ("should_retry", _bool),
        "message": ("message", _text),
    },
    FaultKind.LATENCY: {"ms": ("ms", _ms)},
    FaultKind.STALL: {"after": ("after", _count), "ms": ("ms", _ms)},
    FaultKind.GARBLE: {"after": ("after", _count)},
    FaultKind.QUOTA: {
        **{limit: (limit, parse_rate) for limit in QUOTA_LIMITS},
        "retry_after": ("sends_retry_after", _bool),
        "message": ("message", _text),
    },
}
_REQUIRED: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LATENCY: ("ms",),
    FaultKind.STALL: ("ms",),
}


def parse_fault(text: str) -> Fault:
    """Parse one ``KIND[:key=value,...]`` spec."""
    spec = text.strip()
    name, _, rest = spec.partition(":")
    try:
        kind = FaultKind(name.strip().lower())
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise FaultSpecError(
            f"fault {spec!r}: unknown kind {name.strip()!r} (valid kinds: {kinds})"
        ) from None
    allowed = {**_KEYS[kind], **_GATE}
    values: dict[str, Any] = {}
    given: set[str] = set()
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = (s.strip() for s in part.partition("="))
        if key not in allowed:
            valid = ", ".join(allowed)
            raise FaultSpecError(
                f"fault {spec!r}: unknown key {key!r} for {kind} (valid keys: {valid})"
            )
        if not eq or (not value and key != "message"):
            raise FaultSpecError(f"fault {spec!r}: {part!r} needs a value ({key}=...)")
        if key in given:
            raise FaultSpecError(f"fault {spec!r}: {key!r} is given twice")
        given.add(key)
        attr, parse = allowed[key]
        try:
            values[attr] = parse(key, value)
        except ValueError as exc:
            raise FaultSpecError(f"fault {spec!r}: {exc}") from None
    for key in _REQUIRED.get(kind, ()):
        if key not in given:
            raise FaultSpecError(f"fault {spec!r}: {kind} needs {key}=... (e.g. {kind}:{key}=500)")
    if kind is FaultKind.PING and ("every" in given) == ("interval" in given):
        raise FaultSpecError(f"fault {spec!r}: ping needs exactly one of every=N or interval=MS")
    if kind is FaultKind.DISCONNECT and {"after", "after_bytes"} <= given:
        raise FaultSpecError(f"fault {spec!r}: give after=N or after_bytes=N, not both")
    if kind is FaultKind.QUOTA and not given & set(QUOTA_LIMITS):
        raise FaultSpecError(
            f"fault {spec!r}: quota needs at least one of {', '.join(QUOTA_LIMITS)} "
            "(e.g. quota:requests=50/60s,output_tokens=8000/60s)"
        )
    if kind is FaultKind.OVERLOADED:
        values["error_type"] = "overloaded_error"
    return Fault(kind=kind, text=spec, **values)


def parse_faults(text: str) -> tuple[Fault, ...]:
    """Parse ``spec[;spec...]``; ``none`` (or nothing) means no faults."""
    parts = [p.strip() for p in text.split(";")]
    if [p.lower() for p in parts if p] in ([], ["none"]):
        return ()
    if any(not p for p in parts[:-1]) or "none" in (p.lower() for p in parts):
        raise FaultSpecError(f"faults {text!r}: empty spec or 'none' mixed with faults")
    return tuple(parse_fault(p) for p in parts if p)


def over_limit(faults: Sequence[Fault], limit: float) -> str | None:
    """Why ``faults`` are refused under ``max_delay`` = ``limit``, or ``None``."""
    for fault in faults:
        problem = wait_problem(f"fault {fault.text!r}", fault.wait, limit)
        if problem:
            return problem
    return None


def listed(faults: Sequence[Fault]) -> str:
    """The specs of ``faults`` as one line, e.g. for the ``x-tapedeck-faults`` header."""
    return _joined(tuple(faults))


@functools.lru_cache(maxsize=256)
def _joined(faults: tuple[Fault, ...]) -> str:
    return "; ".join(f.text for f in faults)
