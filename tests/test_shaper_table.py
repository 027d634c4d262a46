"""The pure middle of the pipeline, as tables: a plan in, a plan out.

- every fault kind: what :func:`shape_plan` makes of a known stream plan;
- every timing policy: the plan the cassette source makes of a recorded response;
- the header rules of :func:`response_headers`, the byte meter and ``status`` answers.

Steps are written ``(at_ms, name)``; the source stream is five events 10 ms apart after
headers at 100 ms. ``ping`` and ``error`` are what shaping inserted; ``name*`` is an event
whose data was garbled.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tapedeck.cassette.model import RecordedEvent, RecordedResponse, StreamEnd
from tapedeck.pipeline import Ending, Head, Plan, Step
from tapedeck.shaping.faults import parse_faults
from tapedeck.shaping.shaper import cut_at_bytes, shape_plan, status_plan
from tapedeck.shaping.timing import Timing
from tapedeck.source.cassette import plan, render
from tapedeck.wire.flow import ByteMeter
from tapedeck.wire.headers import header_value, response_headers
from tapedeck.wire.sse import PING

NAMES = ["message_start", "block_start", "delta", "block_stop", "message_stop"]


def source_plan(ending: Ending = Ending.COMPLETE) -> Plan:
    steps = [
        Step(0.1 + i * 0.01, f"event: {n}\ndata: {{}}\n\n".encode(), n, {"n": i})
        for i, n in enumerate(NAMES)
    ]
    head = Head(200, [], stream=True)
    return Plan(head, 0.1, steps, 0.14, ending)


def table(shaped: Plan) -> list[tuple[float, str]]:
    out = []
    for s in shaped.steps:
        name = s.event
        if s.event not in ("ping", "error") and b"{}" not in s.encoded:
            name += "*"
        out.append((round(s.at * 1000, 3), name))
    return out


def row(at: list[float], names: list[str]) -> list[tuple[float, str]]:
    return list(zip(at, names, strict=True))


BASE = [100.0, 110.0, 120.0, 130.0, 140.0]

# spec, steps out, end_at ms, ending, headers_at ms, interval, byte limit left for the writer
FAULTS: list[Any] = [
    pytest.param(
        "ping:every=2",
        row(
            [100, 110, 110, 120, 130, 130, 140],
            [NAMES[0], NAMES[1], "ping", NAMES[2], NAMES[3], "ping", NAMES[4]],
        ),
        140,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="ping-every",
    ),
    pytest.param(
        "ping:interval=5",
        row(BASE, NAMES),
        140,
        Ending.COMPLETE,
        100,
        0.005,
        None,
        id="ping-interval-left-to-the-writer",
    ),
    pytest.param(
        "error:after=2,type=api_error",
        row([100, 110, 120], [NAMES[0], NAMES[1], "error"]),
        120,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="error",
    ),
    pytest.param(
        "overloaded:after=0",
        row([100], ["error"]),
        100,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="overloaded-first",
    ),
    pytest.param(
        "overloaded:after=5",
        row([*BASE, 140], [*NAMES, "error"]),
        140,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="overloaded-at-the-end",
    ),
    pytest.param(
        "overloaded:after=9",
        row(BASE, NAMES),
        140,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="overloaded-past-the-end",
    ),
    pytest.param(
        "disconnect:after=3",
        row([100, 110, 120], NAMES[:3]),
        120,
        Ending.CUT,
        100,
        None,
        None,
        id="disconnect",
    ),
    pytest.param(
        "disconnect:after_bytes=40",
        [(100.0, NAMES[0]), (110.0, NAMES[1] + "*")],
        110,
        Ending.CUT,
        100,
        None,
        None,
        id="disconnect-bytes",
    ),
    pytest.param(
        "disconnect:after_bytes=40;ping:interval=5",
        row(BASE, NAMES),
        140,
        Ending.COMPLETE,
        100,
        0.005,
        40,
        id="disconnect-bytes-with-interval-pings-left-to-the-writer",
    ),
    pytest.param(
        "truncate:after=4",
        row(BASE[:4], NAMES[:4]),
        130,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="truncate",
    ),
    pytest.param(
        "garble:after=2",
        row(BASE, [NAMES[0], NAMES[1], NAMES[2] + "*", NAMES[3], NAMES[4]]),
        140,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="garble",
    ),
    pytest.param(
        "stall:after=2,ms=50",
        row([100, 110, 170, 180, 190], NAMES),
        190,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="stall",
    ),
    pytest.param(
        "stall:after=5,ms=50",
        row(BASE, NAMES),
        190,
        Ending.COMPLETE,
        100,
        None,
        None,
        id="stall-at-the-end-moves-the-end",
    ),
    pytest.param(
        "latency:ms=30",
        row([130, 140, 150, 160, 170], NAMES),
        170,
        Ending.COMPLETE,
        130,
        None,
        None,
        id="latency",
    ),
    pytest.param(
        "latency:ms=30;stall:after=1,ms=20;ping:every=4;truncate:after=4",
        row([130, 160, 170, 180, 180], [NAMES[0], NAMES[1], NAMES[2], NAMES[3], "ping"]),
        180,
        Ending.COMPLETE,
        130,
        None,
        None,
        id="several-together",
    ),
]


@pytest.mark.parametrize(
    ("spec", "steps", "end_ms", "ending", "headers_ms", "interval", "limit"), FAULTS
)
def test_shape_plan(
    spec: str,
    steps: list[tuple[float, str]],
    end_ms: float,
    ending: Ending,
    headers_ms: float,
    interval: float | None,
    limit: int | None,
) -> None:
    shaped = shape_plan(source_plan(), parse_faults(spec))

    assert table(shaped) == steps
    assert shaped.end_at * 1000 == pytest.approx(end_ms)
    assert shaped.ending is ending
    assert shaped.headers_at * 1000 == pytest.approx(headers_ms)
    assert shaped.ping_interval == interval
    assert shaped.byte_limit == limit
    listed = "; ".join(part.strip() for part in spec.split(";"))
    assert (b"x-tapedeck-faults", listed.encode()) in shaped.head.headers


def test_a_recorded_cut_stays_a_cut_unless_a_fault_ends_the_stream_first() -> None:
    recorded_cut = source_plan(Ending.CUT)

    assert shape_plan(recorded_cut, parse_faults("ping:every=1")).ending is Ending.CUT
    assert shape_plan(recorded_cut, parse_faults("overloaded:after=1")).ending is Ending.COMPLETE


def test_error_events_carry_the_api_error_shape() -> None:
    shaped = shape_plan(source_plan(), parse_faults("error:after=0,type=billing_error"))
    data = shaped.steps[0].encoded.split(b"data: ", 1)[1].strip()

    assert shaped.steps[0].encoded.startswith(b"event: error\n")
    assert json.loads(data) == {
        "type": "error",
        "error": {"type": "billing_error", "message": "Billing error"},
    }


def test_only_latency_applies_to_a_whole_body() -> None:
    whole = Plan(Head(200, [], stream=False), 0.0, [Step(0.0, b"{}")], 0.0, body=b"{}")

    shaped = shape_plan(whole, parse_faults("latency:ms=20"))

    assert shaped.headers_at == pytest.approx(0.02)
    assert [s.at for s in shaped.steps] == [pytest.approx(0.02)]
    assert shaped.body is None  # no longer due at once


# -- timing policies ---------------------------------------------------------------------


def recorded(end_at_ms: float | None = None) -> RecordedResponse:
    events = tuple(RecordedEvent(n, {"n": i}, i * 20.0) for i, n in enumerate(NAMES[:3]))
    return RecordedResponse(200, (), 300.0, events=events, end_at_ms=end_at_ms)


TIMINGS = [
    pytest.param("recorded", 300, [300, 320, 340], 340, id="recorded"),
    pytest.param("speed=2", 150, [150, 160, 170], 170, id="speed"),
    pytest.param("fixed=5", 0, [0, 5, 10], 10, id="fixed"),
    pytest.param("instant", 0, [0, 0, 0], 0, id="instant"),
]


@pytest.mark.parametrize(("spec", "headers_ms", "steps_ms", "end_ms"), TIMINGS)
def test_timing_policies(
    spec: str, headers_ms: float, steps_ms: list[float], end_ms: float
) -> None:
    planned = plan(render(recorded(), ()), Timing.parse(spec))

    assert planned.headers_at * 1000 == pytest.approx(headers_ms)
    assert [s.at * 1000 for s in planned.steps] == pytest.approx(steps_ms)
    assert planned.end_at * 1000 == pytest.approx(end_ms)
    assert (planned.body is not None) is (spec == "instant")


@pytest.mark.parametrize(
    ("spec", "end_ms"),
    [("recorded", 400), ("speed=4", 100), ("fixed=5", 10), ("instant", 0)],
)
def test_recorded_end_time_scales_with_the_timing(spec: str, end_ms: float) -> None:
    planned = plan(render(recorded(end_at_ms=100), ()), Timing.parse(spec))

    assert planned.end_at * 1000 == pytest.approx(end_ms)


def test_a_recorded_disconnect_plans_a_cut() -> None:
    response = RecordedResponse(200, (), 0.0, events=recorded().events, end=StreamEnd.DISCONNECT)

    assert plan(render(response, ()), Timing.parse("instant")).ending is Ending.CUT


# -- header rules ----------------------------------------------------------------------


HEADERS = [
    pytest.param(
        [("request-id", "r"), ("date", "x"), ("transfer-encoding", "chunked")],
        {"stream": True},
        [
            ("request-id", "r"),
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
        ],
        id="stream-gets-its-content-type-and-no-cache",
    ),
    pytest.param(
        [("content-type", "text/event-stream"), ("cache-control", "private")],
        {"stream": True},
        [("content-type", "text/event-stream"), ("cache-control", "private")],
        id="stream-keeps-recorded-ones",
    ),
    pytest.param(
        [("content-length", "99"), ("content-encoding", "gzip"), ("x-should-retry", "true")],
        {"stream": False, "length": 12, "json_body": True},
        [
            ("x-should-retry", "true"),
            ("content-type", "application/json"),
            ("content-length", "12"),
        ],
        id="json-gets-its-own-length",
    ),
    pytest.param(
        [],
        {"stream": False, "length": 5},
        [("content-length", "5")],
        id="text-gets-no-content-type",
    ),
    pytest.param(
        [("connection", "close"), ("keep-alive", "5"), ("upgrade", "h2")],
        {"stream": False, "length": 0, "extra": [("x-tapedeck-source", "cassette")]},
        [("content-length", "0"), ("x-tapedeck-source", "cassette")],
        id="hop-by-hop-dropped-extra-last",
    ),
]


@pytest.mark.parametrize(("recorded_headers", "how", "wire"), HEADERS)
def test_response_headers(
    recorded_headers: list[tuple[str, str]], how: dict[str, Any], wire: list[tuple[str, str]]
) -> None:
    got = response_headers(recorded_headers, **how)

    assert got == [(k.encode(), v.encode()) for k, v in wire]


def test_header_values_outside_latin_1_are_escaped() -> None:
    assert header_value("Grüße") == "Grüße".encode("latin-1")
    assert header_value("日本") == b"\\u65e5\\u672c"


# -- bytes and status answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "chunks", "kept", "reached"),
    [
        (10, [b"abcd", b"efgh"], [b"abcd", b"efgh"], False),
        (8, [b"abcd", b"efgh", b"ij"], [b"abcd", b"efgh"], True),
        (6, [b"abcd", b"efgh"], [b"abcd", b"ef"], True),
        (0, [b"abcd"], [], True),
    ],
)
def test_byte_meter(limit: int, chunks: list[bytes], kept: list[bytes], reached: bool) -> None:
    meter = ByteMeter(limit)
    out = []
    for chunk in chunks:
        if meter.reached:
            break
        data = meter.take(chunk)
        if data:
            out.append(data)

    assert out == kept
    assert meter.reached is reached
    steps, cut = cut_at_bytes([Step(0.0, c) for c in chunks], limit)
    assert [s.encoded for s in steps] == kept
    assert cut is reached


@pytest.mark.parametrize(
    ("spec", "status", "error_type", "message", "extra"),
    [
        ("status:code=529", 529, "overloaded_error", "Overloaded", {}),
        (
            "status:code=429,retry_after=2,retry_after_ms=5,should_retry=false,message=Slow",
            429,
            "rate_limit_error",
            "Slow",
            {"retry-after": "2", "retry-after-ms": "5", "x-should-retry": "false"},
        ),
        ("status:code=418", 418, "invalid_request_error", "Invalid request error", {}),
    ],
)
def test_status_plan(
    spec: str, status: int, error_type: str, message: str, extra: dict[str, str]
) -> None:
    (fault,) = parse_faults(spec)

    answer = status_plan(fault, (fault,), [("x-tapedeck-source", "fault")])

    headers = {k.decode(): v.decode() for k, v in answer.head.headers}
    body = json.loads(b"".join(s.encoded for s in answer.steps))
    assert answer.head.status == status
    assert not answer.head.stream
    assert body["error"] == {"type": error_type, "message": message}
    assert headers["request-id"] == body["request_id"]
    assert headers["content-length"] == str(len(answer.steps[0].encoded))
    assert headers["x-tapedeck-faults"] == spec
    assert headers["x-tapedeck-source"] == "fault"
    assert {k: headers[k] for k in extra} == extra


def test_status_plan_waits_for_latency() -> None:
    faults = parse_faults("status:code=500;latency:ms=40")

    answer = status_plan(faults[0], faults, [])

    assert answer.headers_at == pytest.approx(0.04)
    assert PING not in answer.steps[0].encoded
