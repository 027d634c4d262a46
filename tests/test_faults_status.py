"""Status and delay faults, as the official SDK sees them over a real socket.

``status`` answers an HTTP error instead of the stream (and the SDK's retries get through),
``latency`` delays the headers and ``stall`` pauses a stream, under instant and recorded
timing; non-streaming requests take status and latency only.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import anthropic
import httpx2
import pytest

from conformance_sdk import STALL, raises_like
from conftest import HELLO, LogLines, MakeServer, plain, sdk, streamed
from fault_helpers import (
    EARLY,
    HELLO_EVENTS,
    LONG,
    REQUEST_LINE,
    SHORT_READ,
    by_status,
    delivered,
    drain,
    fault,
    gaps,
    statuses,
    timed_events,
)
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import parse_faults
from tapedeck.source.sequences import SequenceEnd

# --- status -----------------------------------------------------------------------------------


def test_status_529_body_and_headers(server: ServerThread) -> None:
    spec = "status:code=529,retry_after=2,retry_after_ms=1,should_retry=true"
    response = httpx2.post(
        f"{server.base_url}/v1/messages", json={**HELLO, "stream": True}, headers=fault(spec)
    )
    assert response.status_code == 529
    request_id = response.headers["request-id"]
    assert re.fullmatch(r"req_011C[0-9A-Za-z]{20}", request_id)  # as the API makes them
    assert response.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": request_id,
    }
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1"
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["x-tapedeck-faults"] == spec
    assert response.headers["x-tapedeck-source"] == "fault"
    assert response.headers["x-tapedeck-cassette"] == "streaming/hello"
    bare = httpx2.post(
        f"{server.base_url}/v1/messages", json={**HELLO, "stream": True}, headers=fault("status")
    )
    assert bare.status_code == 529
    assert "retry-after" not in bare.headers
    assert "retry-after-ms" not in bare.headers
    assert "x-should-retry" not in bare.headers


def test_status_529_twice_then_the_sdk_retry_succeeds(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    spec = "status:code=529,times=2,retry_after_ms=1"
    with make_server() as s, sdk(s, max_retries=2, default_headers=fault(spec)) as c:
        tapedeck_log.only(s)
        started = time.perf_counter()
        with c.messages.stream(**HELLO) as stream:
            assert stream.get_final_text() == "Hello!"
            assert stream.response.request.headers["x-stainless-retry-count"] == "2"
        assert time.perf_counter() - started < 1  # waited retry-after-ms, not the backoff
        # By status: with --server-workers, workers write their lines in their own time (the
        # retry count above says the order the attempts came in).
        lines = by_status(tapedeck_log.wait_for(REQUEST_LINE, 3))
        assert statuses(lines) == ["200", "529", "529"]
        assert " faults: " not in lines[0]
        assert [line.split(" faults: ")[1].rsplit(" ", 1)[0] for line in lines[1:]] == [spec] * 2


def test_status_should_retry_false_is_not_retried(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    spec = "status:code=529,should_retry=false,retry_after_ms=1"
    sent: list[object] = []
    counting = anthropic.DefaultHttpxClient(event_hooks={"request": [sent.append]})
    with make_server() as s, sdk(s, max_retries=2, http_client=counting) as c:
        tapedeck_log.only(s)
        with pytest.raises(anthropic.OverloadedError) as caught:
            c.messages.create(**HELLO, stream=True, extra_headers=fault(spec))
        assert caught.value.type == "overloaded_error"
        assert caught.value.response.headers["x-should-retry"] == "false"
        # The call has returned, so the client has sent every request it was going to.
        assert len(sent) == 1
        assert statuses(tapedeck_log.wait_for(REQUEST_LINE, 1)) == ["529"]


@pytest.mark.parametrize(
    ("spec", "exception", "error_type", "message"),
    [
        ("status:code=429", anthropic.RateLimitError, "rate_limit_error", "Rate limited"),
        ("status", anthropic.OverloadedError, "overloaded_error", "Overloaded"),
        ("status:code=500", anthropic.InternalServerError, "api_error", "Internal server error"),
        ("status:code=504", anthropic.GatewayTimeoutError, "timeout_error", "Request timed out"),
        (
            "status:code=400",
            anthropic.BadRequestError,
            "invalid_request_error",
            "Invalid request error",
        ),
        (
            "status:code=401",
            anthropic.AuthenticationError,
            "authentication_error",
            "Authentication error",
        ),
        (
            "status:code=413",
            anthropic.RequestTooLargeError,
            "request_too_large",
            "Request too large",
        ),
        (
            "status:code=429,message=slow down",
            anthropic.RateLimitError,
            "rate_limit_error",
            "slow down",
        ),
    ],
)
def test_status_raises_the_sdk_exception_for_the_code(
    client: anthropic.Anthropic,
    spec: str,
    exception: type[anthropic.APIStatusError],
    error_type: str,
    message: str,
) -> None:
    with pytest.raises(exception) as caught:
        client.messages.create(**HELLO, stream=True, extra_headers=fault(spec))
    assert type(caught.value) is exception
    assert caught.value.body == {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": caught.value.request_id,
    }


def test_status_429_retried_by_the_sdk(make_server: MakeServer, tapedeck_log: LogLines) -> None:
    spec = "status:code=429,times=1,retry_after_ms=1"
    with make_server() as s, sdk(s, max_retries=1) as c:
        tapedeck_log.only(s)
        with c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
        # times=1 makes the 429 the first attempt's; with --server-workers the two workers
        # write their lines in their own time, so the lines are compared by status.
        assert statuses(by_status(tapedeck_log.wait_for(REQUEST_LINE, 2))) == ["200", "429"]


def test_status_on_a_request_that_matches_nothing_is_still_a_miss(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            **{**HELLO, "messages": [{"role": "user", "content": "no such cassette"}]},
            stream=True,
            extra_headers=fault("status:code=529"),
        )
    assert caught.value.type == "not_found_error"
    assert "x-tapedeck-faults" not in caught.value.response.headers


def test_status_fault_leaves_the_sequence_position_alone(
    make_server: MakeServer, deck_dir: Path
) -> None:
    """A retried request gets the answer the first attempt would have had."""
    with make_server(deck_dir) as s, sdk(s, max_retries=1) as c:
        first = c.messages.create(
            **plain("twice"), extra_headers=fault("status:code=529,times=1,retry_after_ms=1")
        )
        assert first.id == "msg_first"


def test_status_fault_does_not_use_up_a_sequence(make_server: MakeServer) -> None:
    """With ``sequence_end: error``, a one-interaction cassette still answers the retry."""
    spec = "status:code=529,times=1,retry_after_ms=1"
    with (
        make_server(sequence_end=SequenceEnd.ERROR) as s,
        sdk(s, max_retries=1) as c,
        c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream,
    ):
        assert stream.get_final_text() == "Hello!"


# --- latency and stall --------------------------------------------------------------------------


def test_latency_delays_the_headers(server: ServerThread) -> None:
    spec = "latency:ms=400"
    with sdk(server, timeout=SHORT_READ) as short, pytest.raises(anthropic.APITimeoutError):
        short.messages.create(**HELLO, stream=True, extra_headers=fault(spec))
    with sdk(server, timeout=LONG) as patient:
        started = time.perf_counter()
        with patient.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            headers_after = time.perf_counter() - started
            assert stream.response.headers["x-tapedeck-faults"] == spec
            assert stream.get_final_text() == "Hello!"
    assert 0.38 <= headers_after < 1.5


def test_latency_timeout_is_retried_by_the_sdk(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    """A read timeout before the headers is a connection error: the SDK retries it."""
    spec = "latency:ms=500,times=1"
    with make_server() as s, sdk(s, max_retries=1, timeout=SHORT_READ) as c:
        tapedeck_log.only(s)
        with c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
        lines = by_status(tapedeck_log.wait_for(REQUEST_LINE, 2))
        assert statuses(lines) == ["-", "200"]  # the first attempt never got its headers
        assert [" faults: " in line for line in lines] == [True, False]
        assert lines[0].split(" faults: ")[1].startswith(spec)


def test_stall_pauses_before_event_n_plus_one(server: ServerThread) -> None:
    spec = "stall:after=3,ms=600"
    received: list[str] = []
    # The client's read timeout fires in the pause: after the first three events, not before.
    with sdk(server, timeout=SHORT_READ) as short, raises_like(STALL):
        drain(short.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert received == delivered(3)
    with sdk(server, timeout=LONG) as patient:
        arrivals = timed_events(patient, {**HELLO, "stream": True}, fault(spec))
        with patient.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
    assert [name for name, _ in arrivals] == HELLO_EVENTS
    at = [t for _, t in arrivals]
    assert at[3] >= 0.6 - EARLY  # held back 600 ms: it cannot come sooner
    # The pause is before event 3 alone: longer than the wait for the events before it and
    # than the rest of the stream after it.
    stall = gaps(at)[2]
    assert stall > at[2]
    assert stall > at[7] - at[3]


def test_stall_and_latency_under_recorded_timing(deck: ServerThread) -> None:
    """A stall shifts every later event; latency delays the headers, not the gaps."""
    timing = {"x-tapedeck-timing": "recorded"}
    recorded = [0, 0.05, 0.1, 0.15, 0.2, 0.2]  # the paced cassette's events, in seconds
    with sdk(deck, timeout=LONG) as c:
        stalled, delayed = (
            [t for _, t in timed_events(c, streamed("paced"), fault(spec, **timing))]
            for spec in ("stall:after=2,ms=300", "latency:ms=200")
        )
    # No event comes sooner than planned (a time from the request is a bound tapedeck sets):
    # the stall adds 300 ms to every event from the third on, latency 200 ms to every event.
    planned = [at + more for at, more in zip(recorded, [0, 0, 0.3, 0.3, 0.3, 0.3], strict=True)]
    assert all(got >= at - EARLY for got, at in zip(stalled, planned, strict=True)), stalled
    assert all(got >= at + 0.2 - EARLY for got, at in zip(delayed, recorded, strict=True)), delayed
    # Where the time went, by comparison rather than by the clock: the stall is the longest
    # gap, and it comes before the third event; latency comes before the first event, and the
    # gaps after it stay shorter than it.
    stall_gaps = gaps(stalled)
    assert max(stall_gaps) == stall_gaps[1], stalled
    assert delayed[0] > max(gaps(delayed)), delayed


# --- non-streaming requests ---------------------------------------------------------------------


def test_status_and_latency_on_a_non_streaming_request(deck: ServerThread) -> None:
    with sdk(deck) as c:
        with pytest.raises(anthropic.OverloadedError) as caught:
            c.messages.create(**plain("plain"), extra_headers=fault("status:code=529"))
        assert caught.value.response.headers["x-tapedeck-faults"] == "status:code=529"
        started = time.perf_counter()
        response = c.messages.with_raw_response.create(
            **plain("plain"), extra_headers=fault("latency:ms=300")
        )
        took = time.perf_counter() - started
        assert response.headers["x-tapedeck-faults"] == "latency:ms=300"
        assert response.parse().content[0].text == "plain-answer"  # type: ignore[union-attr]
        assert 0.28 <= took < 1
    with sdk(deck, timeout=SHORT_READ) as short, pytest.raises(anthropic.APITimeoutError):
        short.messages.create(**plain("plain"), extra_headers=fault("latency:ms=400"))


@pytest.mark.parametrize(
    ("spec", "misplaced"),
    [
        ("ping:every=1", "ping:every=1"),
        ("truncate", "truncate"),
        ("status:code=529;garble:after=1;latency:ms=5;stall:ms=5", "garble:after=1, stall:ms=5"),
    ],
)
def test_stream_fault_in_the_header_of_a_non_streaming_request(
    deck: ServerThread, spec: str, misplaced: str
) -> None:
    with sdk(deck) as c, pytest.raises(anthropic.BadRequestError) as caught:
        c.messages.create(**plain("plain"), extra_headers=fault(spec))
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"tapedeck: x-tapedeck-fault: {misplaced} only applies to streaming "
            'requests ("stream": true); a non-streaming request takes status, latency and quota',
        },
        "request_id": caught.value.request_id,
    }


def test_server_wide_stream_faults_skip_non_streaming_requests(
    make_server: MakeServer, deck_dir: Path
) -> None:
    with make_server(deck_dir, faults=parse_faults("overloaded:after=1,times=1")) as s, sdk(s) as c:
        for _ in range(3):
            response = c.messages.with_raw_response.create(**plain("plain"))
            assert "x-tapedeck-faults" not in response.headers
            assert response.parse().id == "msg_plain-answer"
        # the non-streaming requests did not use up the fault's single time
        with pytest.raises(anthropic.APIStatusError) as caught:
            drain(c.messages.create(**streamed("paced")), [])
        assert caught.value.type == "overloaded_error"
        received: list[str] = []
        drain(c.messages.create(**streamed("paced")), received)
        assert received[-1] == "message_stop"
