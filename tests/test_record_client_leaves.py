"""A recording does not depend on the client reading to the end (docs/recording.md).

In the modes that record, a client that hangs up — as LiteLLM does once it has the stop
reason, before ``message_stop`` — no longer cancels the upstream request: tapedeck reads the
answer on (for ``record_drain_timeout``) and records it if the upstream finishes it. An
upstream that does not finish in time, or breaks off, is not recorded; in ``passthrough`` a
client leaving still cancels the upstream at once. Also ``HEAD /``, the probe agent
runtimes send to see that tapedeck is there.

The upstream is :mod:`late_stop_upstream` (the fake API, whose ``late ...`` streams hold
``message_stop`` back until the test releases it); the client that hangs up is a raw socket.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LogLines, MakeServer, sdk
from fake_upstream import ask, event_names
from late_stop_upstream import LateStopUpstream
from record_helpers import files, names, only_cassette, proxy
from tapedeck.config import Mode
from tapedeck.pytest_plugin.client import Tapedeck
from tapedeck.server.runner import ServerThread

pytestmark = pytest.mark.one_process

#: The request's log line once tapedeck is done with it, recording included.
LEFT = r"^POST /v1/messages 200 .*\(client went away\)$"
RECORDED = r"^recorded into hangs-up \(1 interaction\)$"
CASSETTE = {"x-tapedeck-cassette": "hangs-up", "x-tapedeck-test-id": "leaves"}
#: How long a test lets tapedeck notice that the client hung up before the upstream ends.
SETTLE_S = 0.3


@pytest.fixture
def late() -> Iterator[LateStopUpstream]:
    upstream = LateStopUpstream()
    with upstream:
        yield upstream


def hang_up_after(
    server: ServerThread, body: dict[str, Any], event: bytes, headers: dict[str, str]
) -> bytes:
    """POST ``body`` over a raw socket, read until ``event`` has arrived whole (``b""``: until
    the response headers), then close the connection; what was read."""
    host, port = server.base_url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    head = [
        "POST /v1/messages HTTP/1.1",
        f"host: {host}:{port}",
        "content-type: application/json",
        "anthropic-version: 2023-06-01",
        "x-api-key: test-key",
        f"content-length: {len(payload)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    wanted = b"event: " + event + b"\ndata: " if event else b"\r\n\r\n"
    got = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        while not (wanted in got and got.index(wanted) < got.rfind(b"\n\n" if event else b"\n")):
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed before {event!r}: {got!r}"
            got += chunk
    return got


def replay_answer(make_server: MakeServer, root: Path, text: str) -> tuple[list[str], str, str]:
    """Replay (mode none) with the real SDK: the streamed events, their text, and the text of
    the same request without ``stream``."""
    with make_server(root, mode=Mode.NONE) as s, sdk(s) as c:
        headers = {"x-tapedeck-cassette": "hangs-up"}
        with c.messages.stream(**ask(text), extra_headers=headers) as stream:
            seen = [str(e.type) for e in stream]
            streamed = stream.get_final_text()
        whole = c.messages.create(**ask(text), extra_headers=headers)
    assert whole.content[0].type == "text"
    return seen, streamed, whole.content[0].text


# --- the client hangs up before the upstream is done ------------------------------------------


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all"])
def test_a_client_hanging_up_after_message_delta_still_gets_the_answer_recorded(
    tmp_path: Path,
    late: LateStopUpstream,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    mode: str,
) -> None:
    text = "late answer from upstream"
    with proxy(make_server, tmp_path, mode, late) as s:
        tapedeck_log.only(s)
        got = hang_up_after(s, ask(text, stream=True), b"message_delta", CASSETTE)
        assert b"message_stop" not in got
        # tapedeck sees the client leave, and reads on: message_stop comes after that.
        assert tapedeck_log.wait_for(LEFT, timeout=SETTLE_S) == []
        late.release.set()
        assert tapedeck_log.wait_for(LEFT), tapedeck_log.lines()
        [seen] = late.requests()
        assert late.wait_ended(seen, timeout=5)
        (entry,) = httpx.get(f"{s.base_url}/_tapedeck/journal?test_id=leaves").json()["entries"]
    # The upstream was read to its end, not cancelled, and its whole answer recorded.
    assert (seen.outcome, seen.sent) == ("complete", event_names(text))
    assert tapedeck_log.matching(RECORDED)
    assert entry["end"] == "client_left"  # the journal still says the client left
    [interaction] = only_cassette(tmp_path)["interactions"]
    response = interaction["response"]
    assert [e["event"] for e in response["events"]] == event_names(text)
    assert response.get("end", "complete") == "complete"
    # It replays, streamed and not, from the cassette alone.
    seen_events, streamed, whole = replay_answer(make_server, tmp_path, text)
    assert len(late.requests()) == 1
    assert seen_events[-1] == "message_stop"
    assert streamed == whole == text


def test_a_json_answer_the_client_gave_up_on_before_the_headers_is_recorded(
    tmp_path: Path, late: LateStopUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    """The fake waits 1.2 s before its headers (``slowheaders``); the client leaves at 0.2 s."""
    text = "slowheaders but complete"
    with proxy(make_server, tmp_path, "once", late) as s:
        tapedeck_log.only(s)
        with (
            httpx.Client(base_url=s.base_url, timeout=httpx.Timeout(10, read=0.2)) as h,
            pytest.raises(httpx.ReadTimeout),
        ):
            h.post("/v1/messages", json=ask(text), headers=CASSETTE)
        # Nothing went out to the client (status "-"), but the answer was recorded.
        assert tapedeck_log.wait_for(r"^POST /v1/messages - .*\(client went away\)$"), (
            tapedeck_log.lines()
        )
        [seen] = late.requests()
        # A failing test's report says so too (nothing reached the client: status "-").
        report = Tapedeck(s, "leaves").summary()
    assert seen.outcome == "complete"
    assert tapedeck_log.matching(RECORDED)
    assert report.startswith("POST /v1/messages - upstream, recorded into hangs-up"), report
    [interaction] = only_cassette(tmp_path)["interactions"]
    assert interaction["response"]["body"]["content"][0]["text"] == text


# --- what is not recorded ---------------------------------------------------------------------


def test_an_upstream_that_does_not_finish_in_time_is_closed_and_not_recorded(
    tmp_path: Path, late: LateStopUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    """``hang``: ``message_start``, then nothing for 30 s; the bound is 0.5 s."""
    with proxy(make_server, tmp_path, "once", late, record_drain_timeout=0.5) as s:
        tapedeck_log.only(s)
        hang_up_after(s, ask("hang on", stream=True), b"message_start", CASSETTE)
        assert tapedeck_log.wait_for(LEFT), tapedeck_log.lines()
        [seen] = late.requests()
        assert late.wait_ended(seen, timeout=5), "the upstream request was left open"
        said = tapedeck_log.matching("^not recorded into hangs-up")
        metrics = httpx.get(f"{s.base_url}/metrics").text
        report = Tapedeck(s, "leaves").summary()
    assert report.startswith(f"POST /v1/messages 200 upstream, {said[0]}"), report
    assert 'tapedeck_recordings_total{result="unfinished"} 1.0' in metrics
    assert seen.outcome == "cancelled"  # tapedeck closed it
    assert seen.sent == ["message_start"]
    assert said == [
        "not recorded into hangs-up: the client left and the upstream had not finished its "
        "answer 0.5 s later (record_drain_timeout); its request was closed and nothing was "
        "written"
    ]
    assert files(tmp_path) == []
    assert late.open_requests == []


def test_an_upstream_that_breaks_off_after_the_client_left_is_not_recorded(
    tmp_path: Path, late: LateStopUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    """``drop``: four events, then the fake closes the connection mid-body."""
    late.gap_s = 0.2  # the client is gone well before the drop
    with proxy(make_server, tmp_path, "new_episodes", late) as s:
        tapedeck_log.only(s)
        hang_up_after(s, ask("drop it", stream=True), b"message_start", CASSETTE)
        assert tapedeck_log.wait_for(LEFT), tapedeck_log.lines()
        [seen] = late.requests()
        said = tapedeck_log.matching("^not recorded into hangs-up")
    assert seen.outcome == "dropped"  # read on until the upstream itself broke off
    assert said == [
        "not recorded into hangs-up: the upstream answered a stream it cut: a transient "
        "failure is recorded only with record_errors; nothing was written"
    ]
    assert files(tmp_path) == []


@pytest.mark.parametrize("fault", ["disconnect:after=50", "ping:interval=20"])
def test_a_fault_that_never_acted_does_not_stop_the_recording(
    tmp_path: Path,
    late: LateStopUpstream,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    fault: str,
) -> None:
    """A recording is taken before faults: a client that leaves before a fault acts gets
    the upstream's answer recorded as if there had been no fault. (Idle pings are sent while
    the writer waits for the upstream: the client leaves in that wait.)"""
    text = "late and faulted"
    headers = {**CASSETTE, "x-tapedeck-fault": fault}
    with proxy(make_server, tmp_path, "once", late) as s:
        tapedeck_log.only(s)
        hang_up_after(s, ask(text, stream=True), b"message_delta", headers)
        assert tapedeck_log.wait_for(LEFT, timeout=SETTLE_S) == []  # still reading on
        late.release.set()
        assert tapedeck_log.wait_for(LEFT), tapedeck_log.lines()
    assert tapedeck_log.matching(RECORDED)
    [interaction] = only_cassette(tmp_path)["interactions"]
    assert [e["event"] for e in interaction["response"]["events"]] == event_names(text)


# --- passthrough, shutdown ----------------------------------------------------------------------


def test_passthrough_still_cancels_the_upstream_when_the_client_leaves(
    tmp_path: Path, late: LateStopUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with proxy(make_server, tmp_path, "passthrough", late) as s:
        tapedeck_log.only(s)
        hang_up_after(s, ask("late but unrecorded", stream=True), b"message_delta", CASSETTE)
        [seen] = late.requests()
        # The stand-in holds message_stop back until it is released or sees the disconnect.
        assert late.wait_ended(seen, timeout=3), "passthrough kept reading the upstream"
        assert tapedeck_log.wait_for(LEFT), tapedeck_log.lines()
    assert seen.outcome == "cancelled"
    assert "message_stop" not in seen.sent
    assert names(tmp_path) == []


def test_a_server_stopping_ends_a_drain_and_closes_the_upstream_request(
    tmp_path: Path,
    late: LateStopUpstream,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with proxy(make_server, tmp_path, "once", late, record_shutdown_timeout=0.5) as s:
        tapedeck_log.only(s)
        hang_up_after(s, ask("hang in there", stream=True), b"message_start", CASSETTE)
        assert tapedeck_log.wait_for(LEFT, timeout=0.5) == []  # it is reading on
        [seen] = late.requests()
        assert seen.outcome == "open"
    assert not s._thread.is_alive()  # joined: the drain ended with the server
    assert late.wait_ended(seen, timeout=5)
    assert seen.outcome == "cancelled"
    assert tapedeck_log.matching("^not recorded into hangs-up") == [
        "not recorded into hangs-up: the client left and the upstream had not finished its "
        "answer 0.5 s after the server was told to stop (record_shutdown_timeout); its request "
        "was closed and nothing was written"
    ]
    assert tapedeck_log.matching(LEFT)
    # Ended by tapedeck, not by uvicorn cancelling what its graceful shutdown left running.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert files(tmp_path) == []


# --- HEAD / -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/hello"])
def test_a_reachability_probe_is_200_with_no_body(server: ServerThread, path: str) -> None:
    """``HEAD /``, and Claude Code's ``HEAD /api/hello``; over a raw socket, so that a body
    would show."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nhost: {host}:{port}\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # nothing follows the headers
            got += sock.recv(65536)
    head, rest = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"content-length: 0" in head.lower()
    assert rest == b""
    with httpx.Client(base_url=server.base_url) as h:
        assert h.head(path).status_code == 200
        assert h.get(path).status_code == 404  # only the probe is answered
        assert h.head("/elsewhere").status_code == 404
        # The Host check applies to it as to every request.
        assert h.head(path, headers={"host": "evil.example"}).status_code == 403
