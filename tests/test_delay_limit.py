"""The longest wait a response may hold (``max_delay``): timing and fault specs that ask for
more, and recordings that a timing would stretch past it, get 400 naming the setting."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import CASSETTES, HELLO, MakeServer, api_error, message_events, stream_cassette
from tapedeck.config import from_flags, resolve
from tapedeck.errors import ConfigError
from tapedeck.pipeline import Head, Plan, Step, wait_over
from tapedeck.shaping.faults import over_limit, parse_faults
from tapedeck.shaping.timing import Timing

STREAM = {**HELLO, "stream": True}
SLOW = stream_cassette("slow", message_events("slow", [0, 0, 2000, 2000, 2000, 2000]))
SLOW_ASK = {"model": "m", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "slow"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("fixed=1e300", "timing fixed=1e+300 asks for a wait of 1e+297 s"),
        ("fixed=600001", "timing fixed=600001 asks for a wait of 600 s"),
    ],
)
def test_a_fixed_gap_over_the_limit_is_refused(spec: str, problem: str) -> None:
    message = Timing.parse(spec).over_limit(600)
    assert message == f"{problem}; the longest wait allowed is 600 s (setting max_delay)"


@pytest.mark.parametrize("spec", ["recorded", "instant", "speed=5e-324", "fixed=600000"])
def test_other_timings_are_checked_on_their_plans(spec: str) -> None:
    assert Timing.parse(spec).over_limit(600) is None


@pytest.mark.parametrize(
    ("spec", "refused"),
    [
        ("latency:ms=1e300", True),
        ("stall:after=2,ms=600001", True),
        ("ping:every=1; latency:ms=600001", True),
        ("latency:ms=600000", False),
        ("ping:interval=1e300", False),  # a ping interval never holds a response back
        ("status:code=529,retry_after=1e9", False),  # a header, not a wait
    ],
)
def test_fault_waits_over_the_limit_are_refused(spec: str, refused: bool) -> None:
    problem = over_limit(parse_faults(spec), 600)
    assert (problem is not None) == refused
    if problem:
        assert problem.endswith("the longest wait allowed is 600 s (setting max_delay)")


def _plan(headers_at: float, *times: float, end_at: float | None = None) -> Plan:
    steps = [Step(t, b"x", "e") for t in times]
    end = end_at if end_at is not None else (times[-1] if times else headers_at)
    return Plan(Head(200, [], stream=True), headers_at, steps, end)


@pytest.mark.parametrize(
    ("plan", "over"),
    [
        (_plan(0.1, 0.1, 5.0, 9.9), None),
        (_plan(11.0, 11.0), (11.0, "before the headers")),
        (_plan(0.0, 0.0, 2.0, 12.5), (10.5, "before event 3")),
        (_plan(0.0, 0.0, float("inf")), (float("inf"), "before event 2")),
        (_plan(0.0, 1.0, end_at=20.0), (19.0, "before the end")),
    ],
)
def test_wait_over_finds_the_first_long_wait(plan: Plan, over: tuple[float, str] | None) -> None:
    assert wait_over(plan, 10.0) == over


def test_a_nan_wait_is_over_any_limit() -> None:
    assert wait_over(_plan(0.0, float("nan")), 10.0) is not None


# --- over a real socket -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "problem"),
    [
        (
            "x-tapedeck-timing",
            "speed=5e-324",
            "tapedeck: cassette 'streaming/hello' with timing speed=4.94066e-324 would wait "
            "inf s before the headers; the longest wait allowed is 600 s (setting max_delay)",
        ),
        (
            "x-tapedeck-timing",
            "fixed=1e300",
            "tapedeck: x-tapedeck-timing: timing fixed=1e+300 asks for a wait of 1e+297 s; "
            "the longest wait allowed is 600 s (setting max_delay)",
        ),
        (
            "x-tapedeck-fault",
            "latency:ms=1e300",
            "tapedeck: x-tapedeck-fault: fault 'latency:ms=1e300' asks for a wait of 1e+297 s; "
            "the longest wait allowed is 600 s (setting max_delay)",
        ),
        (
            "x-tapedeck-fault",
            "stall:after=1,ms=1e300",
            "tapedeck: x-tapedeck-fault: fault 'stall:after=1,ms=1e300' asks for a wait of "
            "1e+297 s; the longest wait allowed is 600 s (setting max_delay)",
        ),
    ],
)
def test_requests_asking_for_endless_waits_get_400_at_once(
    make_server: MakeServer, header: str, value: str, problem: str
) -> None:
    with make_server(CASSETTES) as server, httpx.Client(base_url=server.base_url) as http:
        response = http.post("/v1/messages", json=STREAM, headers={header: value}, timeout=5)
    assert api_error(response, 400, "invalid_request_error") == problem


def test_a_timing_that_stretches_a_recording_past_the_limit_is_refused_and_the_sequence_stays(
    tmp_path: Path, make_server: MakeServer
) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    with (
        make_server(tmp_path, max_delay=1.5, timing=Timing()) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        refused = http.post("/v1/messages", json=SLOW_ASK)
        fast = http.post("/v1/messages", json=SLOW_ASK, headers={"x-tapedeck-timing": "speed=4"})
    assert api_error(refused, 400, "invalid_request_error") == (
        "tapedeck: cassette 'slow' with timing recorded would wait 2 s before event 3; "
        "the longest wait allowed is 1.5 s (setting max_delay)"
    )
    assert fast.status_code == 200
    assert fast.text.count("event: ") == 6


def test_admin_faults_over_the_limit_are_refused_and_the_old_ones_stay(
    make_server: MakeServer,
) -> None:
    with (
        make_server(CASSETTES, max_delay=2.0) as server,
        httpx.Client(base_url=server.base_url, timeout=5) as http,
    ):
        http.put("/_tapedeck/faults", json={"faults": "ping:every=3"})
        refused = http.put("/_tapedeck/faults", json={"faults": "latency:ms=2001"})
        current = http.get("/_tapedeck/faults").json()
    assert api_error(refused, 400, "invalid_request_error") == (
        "tapedeck: fault 'latency:ms=2001' asks for a wait of 2 s; the longest wait allowed "
        "is 2 s (setting max_delay)"
    )
    assert current["faults"] == "ping:every=3"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"timing": "fixed=1e300"},
            "--timing: timing fixed=1e+300 asks for a wait of 1e+297 s; the longest wait "
            "allowed is 600 s (setting max_delay)",
        ),
        (
            {"faults": ["latency:ms=5000"], "max_delay": "4"},
            "--fault: fault 'latency:ms=5000' asks for a wait of 5 s; the longest wait "
            "allowed is 4 s (setting max_delay)",
        ),
    ],
)
def test_server_settings_over_the_limit_stop_the_server(
    flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(from_flags(flags))
    assert str(caught.value) == message


def test_the_limit_is_a_setting_with_a_default_of_ten_minutes() -> None:
    assert resolve().max_delay == 600.0
    assert resolve(from_flags({"max_delay": "0.5"})).max_delay == 0.5
    with pytest.raises(ConfigError, match="--max-delay: expected a number of seconds > 0"):
        resolve(from_flags({"max_delay": "0"}))
