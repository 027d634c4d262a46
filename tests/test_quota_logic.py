"""Quotas without a server: token-bucket arithmetic, the clock, what a response's usage costs,
the rate-limit headers and message, and how the fault book's ``times`` and ``p`` gate refusals.

The same behaviour through the real server and both SDKs is in test_quota_server.py and the
conformance table.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tapedeck.cassette.model import RecordedEvent, RecordedResponse
from tapedeck.shaping import clock as clock_module
from tapedeck.shaping.clock import Clocks
from tapedeck.shaping.fault_book import FaultBook
from tapedeck.shaping.faults import parse_fault
from tapedeck.shaping.quota import Admission, Cost, Quotas
from tapedeck.shaping.rates import Bucket, Rate, parse_rate, retry_after
from tapedeck.source.usage import UsageMeter, usage_of
from tapedeck.wire.errors import new_request_id
from tapedeck.wire.ratelimit import (
    Standing,
    exceeded_message,
    ratelimit_headers,
    rfc3339,
    with_ratelimit,
    without_ratelimit,
)

# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "window_s", "words"),
    [
        ("50/60s", 50, 60.0, "per minute"),
        ("50/1m", 50, 60.0, "per minute"),
        ("50/m", 50, 60.0, "per minute"),
        ("20000/60S", 20000, 60.0, "per minute"),
        ("1000/1h", 1000, 3600.0, "per hour"),
        ("10/24h", 10, 86400.0, "per day"),
        ("10/48h", 10, 172800.0, "per 2 days"),
        ("10/2h", 10, 7200.0, "per 2 hours"),
        ("3/30m", 3, 1800.0, "per 30 minutes"),
        ("3/1.5m", 3, 90.0, "per 90 seconds"),
        ("1/1s", 1, 1.0, "per second"),
        ("5/30s", 5, 30.0, "per 30 seconds"),
        ("5/0.5s", 5, 0.5, "per 0.5 seconds"),
        (" 7/10s ", 7, 10.0, "per 10 seconds"),
    ],
)
def test_parse_rate(text: str, limit: int, window_s: float, words: str) -> None:
    rate = parse_rate("requests", text)
    assert rate == Rate(limit, window_s)
    assert rate.per_window() == words


@pytest.mark.parametrize("text", ["50", "50/60", "/60s", "50/", "5/1d", "1e3/1m", "a/1s", "5/-1s"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="requests must be LIMIT/WINDOW such as 50/60s"):
        parse_rate("requests", text)


@pytest.mark.parametrize("text", ["0/60s", "5/0s", "5/0.0m"])
def test_parse_rate_needs_a_limit_and_a_window(text: str) -> None:
    with pytest.raises(ValueError, match=r"a limit >= 1 and a window > 0"):
        parse_rate("requests", text)


# Each row: operations on a bucket of 50/60s made at t=100 (take COST AT, or ask LEVEL /
# WAIT / REMAINING / FULL_IN at AT), with what each answer must be.
BUCKET_ROWS: list[tuple[str, list[tuple[str, float, float, Any]]]] = [
    ("starts full", [("level", 0, 100, 50.0), ("remaining", 0, 100, 50), ("full_in", 0, 100, 0)]),
    (
        "takes and refills 50 per 60 s",
        [
            ("take", 50, 100, None),
            ("level", 0, 100, 0.0),
            ("wait", 1, 100, pytest.approx(1.2)),
            ("level", 0, 101.2, pytest.approx(1.0)),
            ("remaining", 0, 101.2, 1),
            ("full_in", 0, 100, pytest.approx(60.0)),
            ("level", 0, 1000, 50.0),  # never more than it holds
        ],
    ),
    (
        "a cost it holds waits 0, one it cannot hold waits for ever",
        [("wait", 50, 100, 0.0), ("wait", 51, 100, None), ("wait", 0, 100, 0.0)],
    ),
    (
        "in debt after a cost learned late: refuses until it refills to zero",
        [
            ("take", 70, 100, None),
            ("level", 0, 100, -20.0),
            ("remaining", 0, 100, 0),
            ("wait", 0, 100, pytest.approx(24.0)),
            ("full_in", 0, 100, pytest.approx(84.0)),
        ],
    ),
    (
        "a clock that goes back refills nothing",
        [("take", 10, 100, None), ("level", 0, 50, 40.0), ("take", 1, 50, None)],
    ),
    (
        "an estimate given back: up to what it holds",
        [
            ("take", 40, 100, None),
            ("take", -30, 100, None),
            ("level", 0, 100, 40.0),
            ("take", -30, 106, None),
            ("level", 0, 106, 50.0),  # 46 refilled, then 30 back: full, not 76
        ],
    ),
    (
        "float slack: 60 refilled over 1.2 s holds 1",
        [("take", 50, 100, None), ("wait", 1, 101.2, 0)],
    ),
]


@pytest.mark.parametrize(("name", "steps"), BUCKET_ROWS, ids=[r[0] for r in BUCKET_ROWS])
def test_bucket(name: str, steps: list[tuple[str, float, float, Any]]) -> None:
    bucket = Bucket(Rate(50, 60.0), now=100.0)
    for op, cost, at, want in steps:
        if op == "take":
            bucket.take(cost, at)
        elif op == "level":
            assert bucket.level_at(at) == want, (op, at)
        elif op == "wait":
            assert bucket.wait(cost, at) == want, (op, cost, at)
        elif op == "remaining":
            assert bucket.remaining(at) == want, (op, at)
        else:
            assert bucket.full_in(at) == want, (op, at)


@pytest.mark.parametrize(
    ("wait", "header"), [(1.2, 2), (1.0, 1), (1.0000000000002, 1), (0.01, 1), (29.5, 30), (60, 60)]
)
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: int) -> None:
    assert retry_after(wait) == header


# --- the clock --------------------------------------------------------------------------------


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The wall clock, under the test's control: set ``wall[0]``."""
    now = [1_000.0]
    monkeypatch.setattr(clock_module, "wall", lambda: now[0])
    return now


def test_clocks_run_with_the_wall_clock_until_stopped(wall: list[float]) -> None:
    clocks = Clocks()
    assert clocks.now("t") == clocks.now("") == 1000.0
    wall[0] = 1010.0
    assert clocks.now("t") == 1010.0
    assert clocks.advance("t", 30).now() == 1040.0  # its own clock, stopped and moved on
    wall[0] = 2000.0
    assert (clocks.now("t"), clocks.now("other"), clocks.now("")) == (1040.0, 2000.0, 2000.0)
    assert clocks.advance("t", 0.5).now() == 1040.5
    assert clocks.release("t").now() == 2000.0  # back on the server's clock
    assert not clocks.clock("t").stopped_at


def test_the_server_clock_is_every_test_ids_without_their_own(wall: list[float]) -> None:
    clocks = Clocks()
    clocks.advance("own", 0)
    clocks.advance(None, 100)
    wall[0] = 5000.0
    assert (clocks.now(""), clocks.now("any"), clocks.now("own")) == (1100.0, 1100.0, 1000.0)
    clocks.release(None)
    assert clocks.now("any") == 5000.0


def test_clock_reset_one_test_id_or_all(wall: list[float]) -> None:
    clocks = Clocks()
    clocks.advance("a", 10)
    clocks.advance("b", 20)
    clocks.advance(None, 5)
    clocks.reset("a")
    assert (clocks.now("a"), clocks.now("b")) == (1005.0, 1020.0)
    clocks.reset(None)
    assert (clocks.now("a"), clocks.now("b"), clocks.now("")) == (1000.0,) * 3


def test_a_clock_only_moves_forward() -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        Clocks().advance("t", -1)


# --- what an answer costs ---------------------------------------------------------------------


def _stream(*events: tuple[str, dict[str, Any]]) -> RecordedResponse:
    return RecordedResponse(200, (), events=tuple(RecordedEvent(e, d, 0.0) for e, d in events))


USAGE_ROWS = [
    (
        "stream: message_start, then cumulative message_delta",
        _stream(
            ("message_start", {"message": {"usage": {"input_tokens": 25, "output_tokens": 1}}}),
            ("message_delta", {"usage": {"output_tokens": 7}}),
            ("message_delta", {"usage": {"output_tokens": 15}}),
        ),
        Cost(1, 25, 15),
    ),
    (
        "cache writes count as input, cache reads do not",
        _stream(
            (
                "message_start",
                {
                    "message": {
                        "usage": {
                            "input_tokens": 10,
                            "cache_creation_input_tokens": 90,
                            "cache_read_input_tokens": 500,
                            "output_tokens": 1,
                        }
                    }
                },
            ),
            ("message_delta", {"usage": {"output_tokens": 4, "input_tokens": 12}}),
        ),
        Cost(1, 102, 4),
    ),
    (
        "a JSON message",
        RecordedResponse(200, (), body={"usage": {"input_tokens": 3, "output_tokens": 9}}),
        Cost(1, 3, 9),
    ),
    ("an error body reports nothing", RecordedResponse(529, (), body={"type": "error"}), Cost()),
    ("no body", RecordedResponse(200, ()), Cost()),
    (
        "nonsense counts are ignored",
        RecordedResponse(200, (), body={"usage": {"input_tokens": -1, "output_tokens": True}}),
        Cost(),
    ),
    (
        "a stream cut before message_delta: what message_start said",
        _stream(("message_start", {"message": {"usage": {"input_tokens": 8}}}), ("ping", {})),
        Cost(1, 8, 0),
    ),
]


@pytest.mark.parametrize(("name", "response", "cost"), USAGE_ROWS, ids=[r[0] for r in USAGE_ROWS])
def test_usage_of(name: str, response: RecordedResponse, cost: Cost) -> None:
    assert usage_of(response) == cost


def test_usage_meter_reads_a_raw_json_body() -> None:
    meter = UsageMeter()
    meter.raw_body(b'{"usage": {"input_tokens": 4, "output_tokens": 2}}')
    meter.raw_body(b"not json")
    assert meter.cost() == Cost(1, 4, 2)


@pytest.mark.parametrize(
    ("limit", "cost"),
    [("requests", 1), ("input_tokens", 25), ("output_tokens", 15), ("tokens", 40)],
)
def test_cost_of_each_limit(limit: str, cost: int) -> None:
    assert Cost(1, 25, 15).of(limit) == cost


@pytest.mark.parametrize(
    ("max_tokens", "estimated"),
    [
        (256, Cost(1, 25, 256)),
        (0, Cost(1, 25, 0)),
        (10, Cost(1, 25, 10)),  # less than the answer reports: what the API would estimate
        (None, Cost(1, 25, 15)),  # none to go by: what the answer reports
        (True, Cost(1, 25, 15)),
        (-1, Cost(1, 25, 15)),
        ("256", Cost(1, 25, 15)),
        (256.0, Cost(1, 25, 15)),
    ],
)
def test_output_tokens_are_estimated_from_max_tokens(max_tokens: object, estimated: Cost) -> None:
    assert Cost(1, 25, 15).estimated(max_tokens) == estimated


def test_a_request_needs_its_estimate_left_and_is_charged_what_it_used() -> None:
    quotas = Quotas()
    spec = "quota:output_tokens=300/60s"
    used = Cost(1, 25, 15)
    for left in (285, 270, 255):
        admission = admit(quotas, spec, 0.0, used.estimated(256))
        assert admission.refusal is None
        quotas.take(admission, used)
        assert quotas.standings(admission)["output-tokens"].remaining == left
    refused = admit(quotas, spec, 0.0, used.estimated(256))  # 255 left, 256 needed
    assert refused.refusal is not None
    assert refused.refusal.retry_after == 1  # one token, at 5 a second
    assert admit(quotas, spec, 0.0, used.estimated(255)).refusal is None


# --- headers and the message ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_767_225_600.0, "2026-01-01T00:00:00Z"),
        (1_767_225_600.2, "2026-01-01T00:00:01Z"),  # rounded up: full by then
        (1e20, "9999-12-31T23:59:59Z"),
    ],
)
def test_rfc3339(at: float, shown: str) -> None:
    assert rfc3339(at) == shown


def test_rfc3339_exact() -> None:
    assert rfc3339(1_767_225_600.25, exact=True) == "2026-01-01T00:00:00.250Z"


def test_ratelimit_headers_in_the_apis_order() -> None:
    standings = {
        "tokens": Standing(1040, 1000, 1_767_225_660.0),
        "requests": Standing(50, 49, 1_767_225_601.2),
    }
    assert ratelimit_headers(standings) == [
        (b"anthropic-ratelimit-requests-limit", b"50"),
        (b"anthropic-ratelimit-requests-remaining", b"49"),
        (b"anthropic-ratelimit-requests-reset", b"2026-01-01T00:00:02Z"),
        (b"anthropic-ratelimit-tokens-limit", b"1040"),
        (b"anthropic-ratelimit-tokens-remaining", b"1000"),
        (b"anthropic-ratelimit-tokens-reset", b"2026-01-01T00:01:00Z"),
    ]


def test_recorded_ratelimit_headers_are_replaced() -> None:
    from tapedeck.pipeline import Head, Plan, Step

    recorded = [
        (b"request-id", b"req_1"),
        (b"anthropic-ratelimit-requests-remaining", b"3999"),
        (b"anthropic-ratelimit-tokens-limit", b"400000"),
    ]
    assert without_ratelimit(recorded) == [(b"request-id", b"req_1")]
    plan = Plan(Head(200, recorded, False), 0.0, [Step(0.0, b"{}")], 0.0, body=b"{}")
    shaped = with_ratelimit(plan, [(b"anthropic-ratelimit-requests-remaining", b"1")])
    assert shaped.head.headers == [
        (b"request-id", b"req_1"),
        (b"anthropic-ratelimit-requests-remaining", b"1"),
    ]
    assert shaped.body == b"{}"
    assert plan.head.headers == recorded  # the kept plan is not touched


def test_exceeded_message_is_the_apis() -> None:
    assert exceeded_message(30000, "input tokens", "per minute", "claude-sonnet-4-5") == (
        "This request would exceed your organization's rate limit of 30,000 input tokens per "
        "minute (org: tapedeck, model: claude-sonnet-4-5). For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
        "current usage. Please reduce the prompt length or the maximum tokens requested, or "
        "try again later. You may also contact sales at https://claude.com/contact-sales to "
        "discuss your options for a rate limit increase."
    )
    assert "(org: tapedeck)" in exceeded_message(50, "requests", "per minute", None)


def test_request_ids_look_like_the_apis() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for request_id in ids:
        assert re.fullmatch(r"req_011C[0-9A-Za-z]{20}", request_id), request_id


# --- quotas: admission, what is taken, what the headers show ----------------------------------


def admit(quotas: Quotas, spec: str, now: float, cost: Cost, gate: bool = True) -> Admission:
    return quotas.admit([parse_fault(spec)], "t", now, cost, lambda _t, _f: gate)


def test_quota_admits_until_a_limit_is_used_up_then_says_when_to_retry() -> None:
    quotas = Quotas()
    spec = "quota:requests=2/60s"
    for now in (0.0, 1.0):
        admission = admit(quotas, spec, now, Cost())
        assert admission.refusal is None
        quotas.take(admission, Cost())
    refused = admit(quotas, spec, 1.0, Cost())
    assert refused.refusal is not None
    assert (refused.refusal.limit, refused.refusal.retry_after) == ("requests", 29)
    assert refused.refusal.rate == Rate(2, 60.0)
    assert admit(quotas, spec, 30.0, Cost()).refusal is None  # 30 s after the first


def test_quota_names_the_first_limit_a_request_goes_over() -> None:
    quotas = Quotas()
    spec = "quota:requests=10/60s,input_tokens=100/60s,output_tokens=20/60s"
    admission = admit(quotas, spec, 0.0, Cost(1, 25, 15))
    quotas.take(admission, Cost(1, 25, 15))
    refused = admit(quotas, spec, 0.0, Cost(1, 25, 15))
    assert refused.refusal is not None
    assert (refused.refusal.limit, refused.refusal.retry_after) == ("output_tokens", 30)


def test_a_request_over_a_whole_limit_is_refused_for_good() -> None:
    refused = admit(Quotas(), "quota:input_tokens=10/60s", 0.0, Cost(1, 25, 0))
    assert refused.refusal is not None
    assert refused.refusal.retry_after is None


def test_a_refused_request_takes_nothing() -> None:
    quotas = Quotas()
    spec = "quota:requests=1/60s"
    quotas.take(admit(quotas, spec, 0.0, Cost()), Cost())
    for _ in range(5):
        assert admit(quotas, spec, 0.0, Cost()).refusal is not None
    assert admit(quotas, spec, 60.0, Cost()).refusal is None


def test_a_waived_refusal_is_let_through_and_not_taken_from_that_quota() -> None:
    quotas = Quotas()
    full, other = parse_fault("quota:requests=1/60s"), parse_fault("quota:requests=10/60s")
    gate = {full: False, other: True}
    faults = [full, other]
    quotas.take(quotas.admit(faults, "t", 0.0, Cost(), lambda _t, f: gate[f]), Cost())
    waived = quotas.admit(faults, "t", 0.0, Cost(), lambda _t, f: gate[f])
    assert (waived.refusal, waived.waived) == (None, (full,))
    quotas.take(waived, Cost())
    assert dict(quotas.buckets(full, "t", 0.0))["requests"].level_at(0.0) == 0.0
    assert dict(quotas.buckets(other, "t", 0.0))["requests"].level_at(0.0) == 8.0


def test_buckets_are_per_test_id_and_rewound() -> None:
    quotas = Quotas()
    fault = parse_fault("quota:requests=1/60s")
    for test_id in ("a", "b"):
        quotas.take(quotas.admit([fault], test_id, 0.0, Cost(), lambda *_: True), Cost())
    assert quotas.admit([fault], "a", 0.0, Cost(), lambda *_: True).refusal is not None
    quotas.rewind("a")
    assert quotas.admit([fault], "a", 0.0, Cost(), lambda *_: True).refusal is None
    assert quotas.admit([fault], "b", 0.0, Cost(), lambda *_: True).refusal is not None
    quotas.rewind(None)
    assert quotas.admit([fault], "b", 0.0, Cost(), lambda *_: True).refusal is None


def standings(spec: str, cost: Cost, now: float = 0.0) -> dict[str, Standing]:
    quotas = Quotas()
    admission = quotas.admit([parse_fault(s) for s in spec.split(";")], "t", 0.0, cost, bool)
    quotas.take(admission, cost)
    return quotas.standings(Admission(admission.faults, "t", now))


STANDING_ROWS = [
    (
        "requests only: no token headers",
        "quota:requests=50/60s",
        {"requests": Standing(50, 49, 1.2)},
    ),
    (
        "input and output: tokens shows both together",
        "quota:input_tokens=100/60s,output_tokens=40/60s",
        {
            "input-tokens": Standing(100, 75, 15.0),
            "output-tokens": Standing(40, 25, 22.5),
            "tokens": Standing(140, 100, 22.5),
        },
    ),
    (
        "a tokens limit is shown as itself",
        "quota:input_tokens=100/60s,tokens=50/60s",
        {"input-tokens": Standing(100, 75, 15.0), "tokens": Standing(50, 10, 48.0)},
    ),
    (
        "two quotas: the most restrictive of each limit",
        "quota:requests=50/60s;quota:requests=2/60s,output_tokens=20/60s",
        {
            "requests": Standing(2, 1, 30.0),
            "output-tokens": Standing(20, 5, 45.0),
            "tokens": Standing(20, 5, 45.0),
        },
    ),
]


@pytest.mark.parametrize(("name", "spec", "want"), STANDING_ROWS, ids=[r[0] for r in STANDING_ROWS])
def test_standings(name: str, spec: str, want: dict[str, Standing]) -> None:
    got = standings(spec, Cost(1, 25, 15))
    assert got.keys() == want.keys()
    for family, standing in want.items():
        shown = got[family]
        assert (shown.limit, shown.remaining) == (standing.limit, standing.remaining), family
        assert shown.reset_at == pytest.approx(standing.reset_at), family


def test_remaining_counts_refill_with_time() -> None:
    assert standings("quota:requests=60/60s", Cost(), now=0.5)["requests"].remaining == 59
    assert standings("quota:requests=60/60s", Cost(), now=1.0)["requests"].remaining == 60


# --- the fault book: times and p decide refusals ------------------------------------------------


def refusals(book: FaultBook, spec: str, requests: int, test_id: str = "t") -> list[bool]:
    """For ``requests`` requests at one instant: True where the quota refused."""
    fault = parse_fault(spec)
    out = []
    for _ in range(requests):
        admission = book.quotas.admit([fault], test_id, 0.0, Cost(), book.passes)
        if admission.refusal is None:
            book.quotas.take(admission, Cost())
        out.append(admission.refusal is not None)
    return out


def test_times_counts_refusals_not_requests() -> None:
    book = FaultBook()
    assert (
        refusals(book, "quota:requests=2/60s,times=2", 6)
        == [False, False, True, True] + [False] * 2
    )


def test_seeded_p_refuses_the_same_requests_per_test_id() -> None:
    spec = "quota:requests=1/60s,p=0.5,seed=7"
    first = refusals(FaultBook(), spec, 20)
    assert first == refusals(FaultBook(), spec, 20)
    assert first[0] is False
    assert 0 < sum(first) < 19


def test_quotas_never_fire_as_other_faults_do() -> None:
    book = FaultBook()
    quota, status = parse_fault("quota:requests=1/1s"), parse_fault("status:code=529")
    assert book.fire([quota, status], "t", streaming=True) == (status,)


def test_book_rewind_refills_quotas() -> None:
    book = FaultBook()
    assert refusals(book, "quota:requests=1/60s", 2) == [False, True]
    book.rewind("t")
    assert refusals(book, "quota:requests=1/60s", 1) == [False]
    book.put([parse_fault("quota:requests=1/60s")], "t")  # a new list restarts them too
    assert refusals(book, "quota:requests=1/60s", 1) == [False]


def test_absurd_windows_give_absurd_but_valid_numbers() -> None:
    rate = Rate(50, 1.7e308)  # a window of 5e300 years
    bucket = Bucket(rate, now=0.0)
    bucket.take(50, 0.0)
    wait = bucket.wait(1, 0.0)
    assert wait is not None
    assert retry_after(wait) == 2**53
    assert rfc3339(bucket.standing(0.0).reset_at) == "9999-12-31T23:59:59Z"
    assert ratelimit_headers({"requests": bucket.standing(0.0)})[2] == (
        b"anthropic-ratelimit-requests-reset",
        b"9999-12-31T23:59:59Z",
    )
