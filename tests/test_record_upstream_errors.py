"""Record, auto and passthrough modes when the client leaves or the upstream fails.

The client going away mid-stream or before the headers, an unreachable or slow upstream, a
connection dropped mid-stream, in-stream error events and HTTP error responses: what the
client gets, what reaches the cassette, and how that replays. The upstream is
:mod:`fake_upstream`.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conformance_sdk import CUT, raises_like
from conftest import LogLines, MakeServer, sdk
from fake_upstream import FakeUpstream, ask, event_names
from record_helpers import files, only_cassette, proxy, raw_post
from reliability.bad_upstreams import AFTER_REQUEST, NO_SUCH_HOST, BadUpstream
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- the client goes away ---------------------------------------------------------------------


#: The request log line tapedeck writes once it is done with a request (after any recording).
DONE = r"^POST /v1/messages (\d{3}|-) .*\(client went away\)$"


@pytest.mark.parametrize("mode", ["record", "auto", "passthrough"])
def test_client_leaving_mid_stream_cancels_the_upstream_request(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines, mode: str
) -> None:
    """The fake sends message_start, then would stay silent for 30 s. A mode that records
    reads on for record_drain_timeout (here 0.2 s) before it gives up on the answer
    (test_record_client_leaves.py); passthrough cancels at once."""
    bound = {} if mode == "passthrough" else {"record_drain_timeout": 0.2}
    with proxy(make_server, tmp_path, mode, fake, **bound) as s:
        tapedeck_log.only(s)
        with sdk(s) as c:
            stream = c.messages.create(**ask("hang on a moment"), stream=True)
            with stream:
                first = next(iter(stream))
            left = time.perf_counter()
        assert first.type == "message_start"
        [seen] = fake.requests()
        assert fake.wait_ended(seen, timeout=1.0), "the upstream request is still open"
        assert seen.outcome == "cancelled"
        assert seen.ended is not None
        assert seen.ended - left < 1.0
        # The request's log line comes once tapedeck is done with it, recording included.
        assert tapedeck_log.wait_for(DONE), tapedeck_log.lines()
        assert files(tmp_path) == []  # nothing recorded for an exchange the client left
        # tapedeck is fine afterwards, and its upstream connections are usable.
        with sdk(s) as c:
            assert c.messages.create(**ask("after leaving")).id == "msg_fake_0002"
    assert fake.open_requests == []


@pytest.mark.parametrize("stream", [True, False])
def test_client_leaving_before_the_headers_cancels_the_upstream_request(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    stream: bool,
) -> None:
    """The fake waits 1.2 s before its headers; the client gives up after 0.2 s, and tapedeck
    0.1 s later (record_drain_timeout: test_record_client_leaves.py)."""
    body = ask("slowheaders please", stream=True) if stream else ask("slowheaders please")
    with proxy(make_server, tmp_path, "record", fake, record_drain_timeout=0.1) as s:
        tapedeck_log.only(s)
        with (
            httpx.Client(base_url=s.base_url, timeout=httpx.Timeout(10, read=0.2)) as h,
            pytest.raises(httpx.ReadTimeout),
        ):
            h.post("/v1/messages", json=body)
        left = time.perf_counter()
        [seen] = fake.requests()
        ended = fake.wait_ended(seen, timeout=0.6)
        assert ended, "the client left but tapedeck still waits for the upstream's answer"
        assert seen.outcome == "cancelled"
        assert seen.ended is not None
        assert seen.ended - left < 0.6
        # The request's log line comes once tapedeck is done with it, recording included.
        assert tapedeck_log.wait_for(DONE), tapedeck_log.lines()
    assert files(tmp_path) == []  # nothing recorded for an exchange the client left


# --- the upstream fails -----------------------------------------------------------------------


def test_unreachable_upstream_is_a_502_api_error_naming_it(
    tmp_path: Path, make_server: MakeServer
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with proxy(make_server, tmp_path, "record", url) as s, sdk(s) as c:
        started = time.perf_counter()
        with pytest.raises(anthropic.InternalServerError) as caught:
            c.messages.create(**ask("anyone there"))
        assert time.perf_counter() - started < 5
        with pytest.raises(anthropic.InternalServerError):
            c.messages.create(**ask("anyone there"), stream=True)
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    assert url in body["error"]["message"]
    assert files(tmp_path) == []


def test_upstream_timeout_is_a_504_and_closes_the_upstream_request(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake, upstream_timeout=0.3) as s:
        started = time.perf_counter()
        response = raw_post(s, "/v1/messages", ask("slowheaders again"))
        elapsed = time.perf_counter() - started
        [seen] = fake.requests()
        assert fake.wait_ended(seen, timeout=1.0)
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["type"] == "timeout_error"
    assert error["message"] == (
        f"tapedeck: upstream {fake.base_url} unreachable: no answer within 0.3 s (upstream_timeout)"
    )
    assert 0.25 < elapsed < 2.0
    assert seen.outcome == "cancelled"
    assert files(tmp_path) == []


#: (upstream, status, the reason the message gives): every way the upstream fails before
#: its headers (:mod:`reliability.bad_upstreams`), as the client is told it.
FAILURES = [
    ("refused", 502, "connection refused"),
    ("dns", 502, "its host name does not resolve ("),
    ("plain", 502, "TLS handshake failed: it does not speak TLS (is the upstream URL http://"),
    ("self_signed", 502, "TLS handshake failed: its certificate is not trusted (self-signed"),
    ("backlog", 504, "no connection within 0.3 s (upstream_connect_timeout)"),
    ("silent", 504, "no answer within 0.3 s (upstream_timeout)"),
    ("close", 502, "it closed the connection without answering"),
    ("reset", 502, "the connection was reset"),
]


@pytest.mark.parametrize("mode", ["record", "passthrough"])
@pytest.mark.parametrize(("upstream", "status", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_upstream_failure_is_an_api_error_naming_the_upstream_and_why(
    tmp_path: Path,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    mode: str,
    upstream: str,
    status: int,
    reason: str,
) -> None:
    """The SDK gets the API's error (a status it retries, as it would the API's own); the
    log has one line for each request, with the reason and no traceback; nothing is written.
    A password in the upstream's URL is in neither."""
    bad = None
    if upstream == "refused":
        url, shown = f"http://me:hunter2@127.0.0.1:{closed_port()}", "http://127.0.0.1:"
    elif upstream == "dns":
        url = shown = f"https://{NO_SUCH_HOST}"
    else:
        bad = BadUpstream("mixed" if upstream in AFTER_REQUEST else upstream)
        url = shown = bad.base_url
    try:
        timeouts = {"upstream_timeout": 0.3, "upstream_connect_timeout": 0.3}
        with proxy(make_server, tmp_path, mode, url, **timeouts) as s:
            tapedeck_log.only(s)
            for stream in (False, True):
                with sdk(s) as c, pytest.raises(anthropic.APIStatusError) as caught:
                    c.with_options(max_retries=0).messages.create(
                        **ask(f"fail:{upstream} now"), stream=stream
                    )
                assert caught.value.status_code == status
                body = caught.value.body
                assert isinstance(body, dict)
                assert body["error"]["type"] == ("timeout_error" if status == 504 else "api_error")
                message = body["error"]["message"]
                assert message.startswith(f"tapedeck: upstream {shown}")
                assert reason in message
                assert "hunter2" not in message
    finally:
        if bad is not None:
            bad.close()
    said = [line for line in tapedeck_log.lines() if "unreachable" in line]
    assert len(said) == 2, said
    assert all(reason in line and "hunter2" not in line for line in said), said
    assert not [line for line in tapedeck_log.lines() if "Traceback" in line]
    assert files(tmp_path) == []


def test_a_reset_mid_stream_cuts_the_client_after_what_was_passed_on_and_writes_nothing(
    tmp_path: Path, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    """The upstream sends message_start and content_block_start, then resets the
    connection: the client has those two events, then the cut the API's own reset would
    give it; without record_errors, the cut stream is not recorded, and the log says so."""
    with BadUpstream("reset_mid") as bad, proxy(make_server, tmp_path, "record", bad.base_url) as s:
        tapedeck_log.only(s)
        live: list[str] = []
        with sdk(s) as c, raises_like(CUT):
            stream = c.with_options(max_retries=0).messages.create(**ask("cut me"), stream=True)
            read_until_error(stream, live)
    assert live == ["message_start", "content_block_start"]
    assert files(tmp_path) == []
    assert tapedeck_log.wait_for("not recorded into .*: the upstream answered a stream it cut")
    assert tapedeck_log.wait_for(r"^POST /v1/messages 200 .*; the upstream broke off its answer ")


def read_until_error(stream: Any, into: list[str]) -> None:
    with stream:
        for event in stream:
            into.append(event.type)


def test_upstream_drop_mid_stream_is_passed_on_recorded_and_replayed(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """The fake sends five events (start, block start, ping, two deltas), then hangs up."""
    live: list[str] = []
    with (
        proxy(make_server, tmp_path, "record", fake, record_errors=True) as s,
        sdk(s) as c,
        raises_like(CUT),
    ):
        read_until_error(c.messages.create(**ask("drop it like"), stream=True), live)
    assert [e for e in live if e != "ping"] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
    [seen] = fake.requests()
    assert seen.outcome == "dropped"
    response = only_cassette(tmp_path)["interactions"][0]["response"]
    assert response["end"] == "disconnect"
    assert [e["event"] for e in response["events"]] == event_names("drop it like")[:5]
    assert response["end_at_ms"] >= response["events"][-1]["at_ms"]

    with make_server(tmp_path) as s, sdk(s) as c:
        for timing in ("instant", "recorded"):
            replayed: list[str] = []
            stream = c.messages.create(
                **ask("drop it like"), stream=True, extra_headers={"x-tapedeck-timing": timing}
            )
            with raises_like(CUT):
                read_until_error(stream, replayed)
            assert replayed == live, timing
        with raises_like(CUT), c.messages.stream(**ask("drop it like")) as st:
            st.until_done()
    assert fake.count == 1


def test_upstream_drop_in_the_middle_of_an_event(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """Two whole events, half of a third, then the connection drops."""
    live: list[str] = []
    with (
        proxy(make_server, tmp_path, "record", fake, record_errors=True) as s,
        sdk(s) as c,
        raises_like(CUT),
    ):
        read_until_error(c.messages.create(**ask("dropmid now"), stream=True), live)
    assert live == ["message_start", "content_block_start"]
    response = only_cassette(tmp_path)["interactions"][0]["response"]
    assert response["end"] == "disconnect"
    assert [e["event"] for e in response["events"]] == ["message_start", "content_block_start"]


def test_upstream_drop_in_passthrough_cuts_the_client_and_writes_nothing(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    live: list[str] = []
    with (
        proxy(make_server, tmp_path, "passthrough", fake) as s,
        sdk(s) as c,
        raises_like(CUT),
    ):
        read_until_error(c.messages.create(**ask("drop it like"), stream=True), live)
    assert [e for e in live if e != "ping"][-1] == "content_block_delta"
    assert files(tmp_path) == []


def test_in_stream_error_event_is_recorded_and_replayed(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    def run(server: ServerThread) -> tuple[list[str], anthropic.APIStatusError]:
        got: list[str] = []
        with sdk(server) as c, pytest.raises(anthropic.APIStatusError) as caught:
            read_until_error(c.messages.create(**ask("streamerror soon"), stream=True), got)
        return got, caught.value

    with proxy(make_server, tmp_path, "record", fake, record_errors=True) as s:
        live, live_error = run(s)
    response = only_cassette(tmp_path)["interactions"][0]["response"]
    assert response["events"][-1]["event"] == "error"
    assert response["events"][-1]["data"]["error"]["type"] == "overloaded_error"
    with make_server(tmp_path) as s:
        replayed, replay_error = run(s)
    assert replayed == live
    assert live_error.status_code == replay_error.status_code == 200
    assert live_error.body == replay_error.body
    assert isinstance(live_error.body, dict)
    assert live_error.body["error"]["type"] == "overloaded_error"


# --- error responses --------------------------------------------------------------------------


ERRORS = [
    # (text, stream, status, exception, headers that must survive)
    ("overloaded now", False, 529, anthropic.OverloadedError, ["retry-after", "x-should-retry"]),
    ("overloaded now", True, 529, anthropic.OverloadedError, ["retry-after", "retry-after-ms"]),
    (
        "ratelimit reached",
        False,
        429,
        anthropic.RateLimitError,
        ["retry-after", "anthropic-ratelimit-requests-remaining", "x-should-retry"],
    ),
]


@pytest.mark.parametrize(("text", "stream", "status", "exception", "kept"), ERRORS)
def test_error_responses_are_recorded_and_replayed_faithfully(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    text: str,
    stream: bool,
    status: int,
    exception: type[anthropic.APIStatusError],
    kept: list[str],
) -> None:
    body = ask(text, stream=True) if stream else ask(text)
    with proxy(make_server, tmp_path, "record", fake, record_errors=True) as s:
        live = raw_post(s, "/v1/messages", body)
    assert live.status_code == status
    assert live.headers["content-type"] == "application/json"
    live_body = live.json()
    assert live_body["type"] == "error"
    assert live_body["request_id"] == "req_fake_0001"
    assert live.headers["request-id"] == "req_fake_0001"
    for name in kept:
        assert name in live.headers, name

    response = only_cassette(tmp_path)["interactions"][0]["response"]
    assert response["status"] == status
    assert response["body"] == live_body
    for name in [*kept, "request-id"]:
        assert response["headers"][name] == live.headers[name], name
    for name in ("set-cookie", "anthropic-organization-id"):
        assert name in live.headers
        assert name not in response["headers"]

    with make_server(tmp_path, timing=Timing.parse("recorded")) as s:
        replayed = raw_post(s, "/v1/messages", body)
        with sdk(s) as c, pytest.raises(exception) as caught:
            c.messages.create(**body)
    assert replayed.status_code == status
    assert replayed.json() == live_body
    for name in [*kept, "request-id", "content-type"]:
        assert replayed.headers[name] == live.headers[name], name
    assert caught.value.status_code == status
    assert caught.value.body == live_body
    assert fake.count == 1
