"""Record, auto and passthrough modes against a fake upstream API, over real sockets.

The client is the official SDK (or raw httpx where the wire matters); the upstream is
:mod:`fake_upstream`, which records what it received and how each request ended. A
recording is then replayed by a new tapedeck in replay mode on the same directory, with
the fake left alone, to prove the cassette alone reproduces the exchange.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
import yaml

from conftest import MakeServer, running
from fake_upstream import (
    BATCH_ID,
    COOKIE,
    GAP_S,
    HEADERS_DELAY_S,
    MODEL,
    ORGANIZATION_ID,
    UPSTREAM_SECRET,
    FakeUpstream,
    answer_text,
    message,
    stream_events,
)
from tapedeck.cassette import save as cassette_save
from tapedeck.config import Mode, Settings
from tapedeck.errors import ConfigError
from tapedeck.record import recorder as recording
from tapedeck.server.app import create_app
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

#: A recognisable fake API key: it must never be written to disk or to the log.
KEY = "sk-ant-api03-TESTKEY-XYZ123"
PLACEHOLDER = "sk-ant-REDACTED"


def event_names(text: str) -> list[str]:
    """The event names of the fake's normal stream answering ``text``."""
    return [name for name, _ in stream_events(0, answer_text(text))]


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        # Client, proxy and fake share one process (and its GIL): the SDK's first stream
        # builds its models for ~100 ms, which would show up as gaps in the first recording.
        root = tmp_path_factory.mktemp("warm-up")
        with running(root, mode=Mode.PASSTHROUGH, upstream=upstream.base_url) as s, sdk(s) as c:
            with c.messages.stream(**ask("warm up")) as stream:
                stream.until_done()
            c.messages.create(**ask("warm up"))
        yield upstream


@pytest.fixture
def fake(fake_server: FakeUpstream) -> FakeUpstream:
    """The module's fake upstream, with no requests seen yet."""
    fake_server.reset()
    return fake_server


def proxy(
    make_server: MakeServer, root: Path, mode: str, upstream: FakeUpstream | str, **settings: Any
) -> AbstractContextManager[ServerThread]:
    url = upstream if isinstance(upstream, str) else upstream.base_url
    return make_server(root, mode=Mode(mode), upstream=url, **settings)


def sdk(server: ServerThread, key: str = "test-key", retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=retries)


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def tokens(text: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def files(root: Path) -> list[Path]:
    """Every file under ``root`` (hidden and temporary ones included)."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def names(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in files(root)]


def only_cassette(root: Path) -> dict[str, Any]:
    found = files(root)
    assert len(found) == 1, names(root)
    assert found[0].suffix == ".yaml", names(root)
    doc: dict[str, Any] = yaml.safe_load(found[0].read_text(encoding="utf-8"))
    return doc


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def ids_in(path: Path) -> list[str]:
    return [i["response"]["body"]["id"] for i in load(path)["interactions"]]


def assert_no_temp_files(root: Path) -> None:
    leftovers = [n for n in names(root) if not n.endswith(".yaml") or "/." in f"/{n}"]
    assert leftovers == [], leftovers


def raw_post(
    server: ServerThread, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=10) as h:
        return h.post(path, json=body, headers={"anthropic-version": "2023-06-01", **headers})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- record mode -----------------------------------------------------------------------------


def test_record_streams_through_and_writes_the_cassette(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    fake.gap_s = GAP_S
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask("what is the weather in Paris")) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "what is the weather in Paris"
    assert final.id == "msg_fake_0001"
    assert final.stop_reason == "end_turn"
    assert fake.count == 1

    doc = only_cassette(tmp_path)
    assert doc["version"] == 1
    assert fake.base_url in doc["description"]
    [interaction] = doc["interactions"]
    request, response = interaction["request"], interaction["response"]
    assert request["method"] == "POST"
    assert request["path"] == "/v1/messages"
    assert request["body"] == {**ask("what is the weather in Paris"), "stream": True}
    assert "anthropic-version" in request["headers"]
    assert response["status"] == 200
    assert response["headers"]["content-type"].startswith("text/event-stream")
    assert response["headers"]["request-id"] == "req_fake_0001"
    assert "end" not in response  # complete
    # What the fake sent, event for event.
    sent = stream_events(1, "what is the weather in Paris")
    assert [(e["event"], e["data"]) for e in response["events"]] == sent
    # Arrival offsets and time to headers, as measured by tapedeck.
    assert HEADERS_DELAY_S * 1000 - 2 <= response["time_to_headers_ms"] < 1000
    offsets = [e["at_ms"] for e in response["events"]]
    assert offsets[0] < 20
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(GAP_S * 1000 - 5 <= g < GAP_S * 1000 + 60 for g in gaps), gaps
    assert offsets[-1] <= response["end_at_ms"] < offsets[-1] + 50
    assert_no_temp_files(tmp_path)


def test_record_writes_event_data_one_event_per_line(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask("one line each")) as stream,
    ):
        stream.until_done()
    [path] = files(tmp_path)
    text = path.read_text(encoding="utf-8")
    data_lines = [line.strip() for line in text.splitlines() if line.strip().startswith("data:")]
    events = load(path)["interactions"][0]["response"]["events"]
    assert len(events) == len(event_names("one line each"))
    assert len(data_lines) == len(events)
    for line in data_lines:
        assert line.startswith("data: {"), line
        assert line.endswith("}"), line


def test_record_mode_always_goes_upstream_and_rewrites_the_cassette(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        assert c.messages.create(**ask("hello there")).id == "msg_fake_0001"
    [path] = files(tmp_path)
    first = load(path)
    assert [i["response"]["body"]["id"] for i in first["interactions"]] == ["msg_fake_0001"]

    # A new run in record mode: the cassette exists, but the request still goes upstream,
    # and the first recording of the run replaces the file.
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        assert c.messages.create(**ask("hello there")).id == "msg_fake_0002"
        assert fake.count == 2
        assert eventually(lambda: ids_in(path) == ["msg_fake_0002"]), ids_in(path)
        assert files(tmp_path) == [path]
        # Within a run, the same request again is appended: a sequence.
        assert c.messages.create(**ask("hello there")).id == "msg_fake_0003"
    assert fake.count == 3
    assert [i["response"]["body"]["id"] for i in load(path)["interactions"]] == [
        "msg_fake_0002",
        "msg_fake_0003",
    ]
    assert_no_temp_files(tmp_path)

    with make_server(tmp_path) as s, sdk(s) as c:  # replay: the sequence, in order
        assert c.messages.create(**ask("hello there")).id == "msg_fake_0002"
        assert c.messages.create(**ask("hello there")).id == "msg_fake_0003"
    assert fake.count == 3


def test_a_retried_request_is_recorded_as_a_sequence_that_replays_the_same(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s, retries=1) as c:
        final = c.messages.create(**ask("flaky service"))
    assert final.content[0].type == "text"
    assert final.content[0].text == "flaky service"
    assert [r.outcome for r in fake.requests()] == ["complete", "complete"]
    doc = only_cassette(tmp_path)
    assert [i["response"]["status"] for i in doc["interactions"]] == [529, 200]

    with make_server(tmp_path) as s:
        with sdk(s, retries=1) as c:
            again = c.messages.create(**ask("flaky service"))
        assert again.model_dump() == final.model_dump()
        with httpx.Client(base_url=s.base_url) as h:
            h.post("/_tapedeck/reset")
        with sdk(s) as c, pytest.raises(anthropic.OverloadedError):
            c.messages.create(**ask("flaky service"))
    assert fake.count == 2


@pytest.mark.parametrize("stream", [False, True])
def test_the_cassette_is_written_before_the_client_has_the_whole_response(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    """On a slow disk too: otherwise, in auto mode, asking again at once is a second miss."""
    write = recording.write_atomic

    def slow_write(path: Path, text: str) -> None:
        time.sleep(0.3)
        write(path, text)

    monkeypatch.setattr(recording, "write_atomic", slow_write)
    body = ask("asked twice", stream=True) if stream else ask("asked twice")
    with proxy(make_server, tmp_path, "auto", fake) as s:
        first = raw_post(s, "/v1/messages", body)
        on_disk = names(tmp_path)
        second = raw_post(s, "/v1/messages", body)
    assert first.status_code == second.status_code == 200
    assert len(on_disk) == 1, "the client had the whole response before its cassette was written"
    assert second.headers["x-tapedeck-source"] == "cassette"
    assert fake.count == 1


# --- auto and passthrough modes --------------------------------------------------------------


def test_auto_replays_hits_and_records_misses(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        recorded = c.messages.create(**ask("known question"))
    assert fake.count == 1
    [known] = files(tmp_path)
    known_bytes = known.read_bytes()

    with proxy(make_server, tmp_path, "auto", fake) as s, sdk(s) as c:
        hit = c.messages.with_raw_response.create(**ask("known question"))
        assert hit.headers["x-tapedeck-source"] == "cassette"
        assert hit.parse().model_dump() == recorded.model_dump()
        assert fake.count == 1  # a hit never reaches the upstream

        miss = c.messages.with_raw_response.create(**ask("new question"))
        assert miss.headers["x-tapedeck-source"] == "upstream"
        assert miss.parse().id == "msg_fake_0002"
        assert fake.count == 2
        new = tmp_path / f"{miss.headers['x-tapedeck-cassette']}.yaml"
        assert eventually(new.is_file)
        assert len(files(tmp_path)) == 2

        # The miss was recorded: asked again, it is replayed.
        again = c.messages.with_raw_response.create(**ask("new question"))
        assert again.headers["x-tapedeck-source"] == "cassette"
        assert again.parse().id == "msg_fake_0002"
        assert fake.count == 2

        with c.messages.stream(**ask("streamed miss")) as stream:
            assert stream.get_final_text() == "streamed miss"
        assert fake.count == 3
        with c.messages.stream(**ask("streamed miss")) as stream:
            assert stream.get_final_text() == "streamed miss"
        assert fake.count == 3
    assert known.read_bytes() == known_bytes  # a hit does not rewrite its cassette
    assert len(files(tmp_path)) == 3
    assert_no_temp_files(tmp_path)


def test_passthrough_proxies_without_writing(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        c.messages.create(**ask("known question"))
    before = {p: p.read_bytes() for p in files(tmp_path)}

    with proxy(make_server, tmp_path, "passthrough", fake) as s, sdk(s) as c:
        raw = c.messages.with_raw_response.create(**ask("known question"))
        assert raw.headers["x-tapedeck-source"] == "upstream"
        assert "x-tapedeck-cassette" not in raw.headers
        assert raw.parse().id == "msg_fake_0002"  # proxied even though a cassette matches
        with c.messages.stream(**ask("streamed through")) as stream:
            assert stream.get_final_text() == "streamed through"
        with pytest.raises(anthropic.OverloadedError):
            c.messages.create(**ask("overloaded now"))
        assert c.messages.count_tokens(**tokens("count me")).input_tokens > 0
    assert fake.count == 5
    assert {p: p.read_bytes() for p in files(tmp_path)} == before


# --- streaming: passed through as it arrives, never buffered ---------------------------------


@pytest.mark.parametrize("mode", ["record", "passthrough"])
def test_each_event_reaches_the_client_before_the_next_is_sent(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, mode: str
) -> None:
    """The fake sends message_start, then waits for the test to see it through tapedeck."""
    got_first = threading.Event()
    received: list[str] = []
    errors: list[BaseException] = []

    with proxy(make_server, tmp_path, mode, fake) as s:

        def read() -> None:
            try:
                with sdk(s) as c, c.messages.create(**ask("gate keeper"), stream=True) as stream:
                    for event in stream:
                        received.append(event.type)
                        if event.type == "message_start":
                            got_first.set()
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        arrived = got_first.wait(timeout=2.0)
        fake.gate.set()  # release the fake either way, so a failure does not hang
        reader.join(timeout=10)
    assert arrived, "message_start did not reach the client while the upstream held the rest"
    assert not reader.is_alive()
    assert errors == []
    [seen] = fake.requests()
    assert seen.gate_opened is True
    assert received[0] == "message_start"
    assert received[-1] == "message_stop"
    if mode != "passthrough":
        events = only_cassette(tmp_path)["interactions"][0]["response"]["events"]
        assert [e["event"] for e in events] == event_names("gate keeper")
        # The wait shows in the recorded offsets: arrival times, not the time of writing.
        assert events[1]["at_ms"] - events[0]["at_ms"] >= fake.gap_s * 1000 - 5


def test_events_split_across_chunks_reach_the_client_whole(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """The fake sends the stream with CRLF line ends, cut into 7-byte pieces."""
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask("split into small pieces")) as stream,
    ):
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "split into small pieces"
    events = only_cassette(tmp_path)["interactions"][0]["response"]["events"]
    assert [(e["event"], e["data"]) for e in events] == [
        (n, d) for n, d in stream_events(1, "split into small pieces")
    ]


# --- the client goes away ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["record", "auto", "passthrough"])
def test_client_leaving_mid_stream_cancels_the_upstream_request(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, mode: str
) -> None:
    """The fake sends message_start, then would stay silent for 30 s."""
    with proxy(make_server, tmp_path, mode, fake) as s:
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
        time.sleep(0.1)
        assert files(tmp_path) == []  # nothing recorded for an exchange the client left
        # tapedeck is fine afterwards, and its upstream connections are usable.
        with sdk(s) as c:
            assert c.messages.create(**ask("after leaving")).id == "msg_fake_0002"
    assert fake.open_requests == []


@pytest.mark.parametrize("stream", [True, False])
def test_client_leaving_before_the_headers_cancels_the_upstream_request(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, stream: bool
) -> None:
    """The fake waits 1.2 s before its headers; the client gives up after 0.2 s."""
    body = ask("slowheaders please", stream=True) if stream else ask("slowheaders please")
    with proxy(make_server, tmp_path, "record", fake) as s:
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
        time.sleep(0.1)
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


def test_upstream_timeout_is_a_502_and_closes_the_upstream_request(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake, upstream_timeout=0.3) as s:
        started = time.perf_counter()
        response = raw_post(s, "/v1/messages", ask("slowheaders again"))
        elapsed = time.perf_counter() - started
        [seen] = fake.requests()
        assert fake.wait_ended(seen, timeout=1.0)
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    assert fake.base_url in response.json()["error"]["message"]
    assert 0.25 < elapsed < 2.0
    assert seen.outcome == "cancelled"
    assert files(tmp_path) == []


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
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        pytest.raises(httpx2.RemoteProtocolError),
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
            with pytest.raises(httpx2.RemoteProtocolError):
                read_until_error(stream, replayed)
            assert replayed == live, timing
        with (
            pytest.raises(httpx2.RemoteProtocolError),
            c.messages.stream(**ask("drop it like")) as st,
        ):
            st.until_done()
    assert fake.count == 1


def test_upstream_drop_in_the_middle_of_an_event(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """Two whole events, half of a third, then the connection drops."""
    live: list[str] = []
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        pytest.raises(httpx2.RemoteProtocolError),
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
        pytest.raises(httpx2.RemoteProtocolError),
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

    with proxy(make_server, tmp_path, "record", fake) as s:
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


# --- non-stream and error responses -----------------------------------------------------------


def test_json_message_is_recorded_and_replayed_faithfully(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s:
        with sdk(s) as c:
            live = c.messages.create(**ask("a plain answer"))
        live_raw = raw_post(s, "/v1/messages", ask("a plain answer"))
    assert live.to_dict() == message(1, "a plain answer")
    assert live_raw.json() == message(2, "a plain answer")
    doc = only_cassette(tmp_path)
    first = doc["interactions"][0]
    assert "stream" not in first["request"]["body"]
    assert first["response"]["status"] == 200
    assert first["response"]["body"] == message(1, "a plain answer")
    assert first["response"]["headers"]["request-id"] == "req_fake_0001"
    assert first["response"]["headers"]["content-type"] == "application/json"
    assert "content-length" not in first["response"]["headers"]
    assert HEADERS_DELAY_S * 1000 - 2 <= first["response"]["time_to_headers_ms"] < 1000

    with make_server(tmp_path) as s:
        with sdk(s) as c:
            replayed = c.messages.create(**ask("a plain answer"))
        replay_raw = raw_post(s, "/v1/messages", ask("a plain answer"))
    assert replayed.model_dump() == live.model_dump()
    assert replay_raw.json() == live_raw.json()
    assert replay_raw.headers["request-id"] == live_raw.headers["request-id"]
    assert fake.count == 2


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
    with proxy(make_server, tmp_path, "record", fake) as s:
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


# --- any /v1/ path ----------------------------------------------------------------------------


def test_count_tokens_and_models_are_proxied_recorded_and_replayed(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    def run(server: ServerThread) -> list[Any]:
        with sdk(server) as c:
            counted = c.messages.count_tokens(**tokens("count these words"))
            page = c.models.list(limit=2)
            model = c.models.retrieve("claude-fake-3")
            with pytest.raises(anthropic.NotFoundError) as missing:
                c.models.retrieve("claude-nonexistent")
        return [
            counted.input_tokens,
            [m.id for m in page.data],
            page.has_more,
            model.display_name,
            missing.value.body,
        ]

    with proxy(make_server, tmp_path, "record", fake) as s:
        live = run(s)
    assert live[1:4] == [["claude-fake-1", "claude-fake-2"], True, "Claude Fake 3"]
    assert [(r.method, r.path) for r in fake.requests()] == [
        ("POST", "/v1/messages/count_tokens"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/claude-fake-3"),
        ("GET", "/v1/models/claude-nonexistent"),
    ]
    assert fake.requests("/v1/models")[0].query["limit"] == ["2"]
    recorded = names(tmp_path)
    assert len(recorded) == 4
    models = [load(tmp_path / n) for n in recorded if n.startswith("models/")]
    assert {"limit": "2"} in [m["interactions"][0]["request"].get("query") for m in models]

    with make_server(tmp_path) as s:
        assert run(s) == live
    assert fake.count == 4


def test_batches_results_url_points_back_at_tapedeck(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    requests = [{"custom_id": "first", "params": ask("batched question")}]

    def run(server: ServerThread) -> list[Any]:
        with sdk(server) as c:
            created = c.messages.batches.create(requests=requests)
            fetched = c.messages.batches.retrieve(BATCH_ID)
            listed = c.messages.batches.list()
            results = list(c.messages.batches.results(BATCH_ID))
        urls = [created.results_url, fetched.results_url, listed.data[0].results_url]
        for url in urls:
            assert url == f"{server.base_url}/v1/messages/batches/{BATCH_ID}/results"
        assert [r.custom_id for r in results] == ["first"]
        result = results[0].result
        assert result.type == "succeeded"
        return [created.id, fetched.processing_status, result.message.content[0].model_dump()]

    with proxy(make_server, tmp_path, "record", fake) as s:
        live = run(s)
        # The results were fetched through tapedeck, not from the fake directly.
        results = fake.requests(f"/v1/messages/batches/{BATCH_ID}/results")
        assert len(results) == 1
        assert "x-stainless-lang" in results[0].headers
    assert live[2] == {"type": "text", "text": "batched answer", "citations": None}

    with make_server(tmp_path) as s:  # another port: replayed URLs point at this server
        assert run(s) == live
        raw = httpx.get(f"{s.base_url}/v1/messages/batches/{BATCH_ID}")
        assert raw.json()["results_url"].startswith(s.base_url + "/")
    assert fake.count == 5


# --- requests are forwarded faithfully --------------------------------------------------------


def test_the_request_is_forwarded_as_the_client_sent_it(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s:
        with sdk(s, key="client-key") as c:
            raw = c.beta.messages.with_raw_response.create(
                **ask("beta question"),
                betas=["beta-two", "beta-one"],
                extra_headers={"x-tapedeck-test-id": "t1", "x-custom": "kept"},
                extra_query={"beta": "true"},
            )
        assert raw.headers["x-tapedeck-source"] == "upstream"
        name = raw.headers["x-tapedeck-cassette"]
    [seen] = fake.requests()
    assert seen.path == "/v1/messages"
    assert seen.query == {"beta": ["true"]}
    assert seen.body == ask("beta question")
    h = seen.headers
    assert h["authorization"] == "Bearer client-key"
    assert h["anthropic-beta"] == "beta-two,beta-one"
    assert "anthropic-version" in h
    assert h["x-custom"] == "kept"
    assert h["user-agent"].startswith("Anthropic/Python")
    assert h["x-stainless-lang"] == "python"
    assert h["host"] == f"127.0.0.1:{fake.port}"
    assert h["accept-encoding"] == "identity"
    assert not [k for k in h if k.startswith("x-tapedeck-")]
    request = load(tmp_path / f"{name}.yaml")["interactions"][0]["request"]
    assert request["query"] == {"beta": "true"}
    assert request["headers"]["anthropic-beta"] == "beta-two,beta-one"
    assert "authorization" not in request["headers"]


def test_upstream_api_key_env_replaces_the_clients_key(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = "sk-ant-api03-REALKEY-FROM-ENV-42"
    monkeypatch.setenv("TAPEDECK_TEST_REAL_KEY", real)
    with proxy(
        make_server, tmp_path, "record", fake, upstream_api_key_env="TAPEDECK_TEST_REAL_KEY"
    ) as s:
        with sdk(s, key="dummy") as c:
            c.messages.create(**ask("who am i"))
        raw_post(s, "/v1/messages", ask("who am i really"), **{"x-api-key": "dummy-too"})
    for seen in fake.requests():
        assert seen.headers.get("x-api-key") == real
        assert "authorization" not in seen.headers
        assert [k for k, _ in seen.header_list if k.lower() == "x-api-key"] == ["x-api-key"]
    assert fake.count == 2
    for path in files(tmp_path):
        assert "REALKEY" not in path.read_text(encoding="utf-8")


def unset_key_settings(root: Path, port: int = 0) -> Settings:
    return Settings(
        cassettes=root,
        port=port,
        mode=Mode.RECORD,
        upstream="http://127.0.0.1:9",
        upstream_api_key_env="TAPEDECK_TEST_UNSET_KEY",
    )


def test_upstream_api_key_env_must_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAPEDECK_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="TAPEDECK_TEST_UNSET_KEY"):
        create_app(unset_key_settings(tmp_path))
    monkeypatch.setenv("TAPEDECK_TEST_UNSET_KEY", "")
    with pytest.raises(ConfigError, match="TAPEDECK_TEST_UNSET_KEY"):
        create_app(unset_key_settings(tmp_path))


def test_a_server_thread_that_cannot_start_closes_its_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ServerThread binds before building the app; a ConfigError must not leak the socket."""
    monkeypatch.delenv("TAPEDECK_TEST_UNSET_KEY", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError):
            ServerThread(unset_key_settings(tmp_path))
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []


# --- cassette names and writes ----------------------------------------------------------------


def test_the_same_request_gets_the_same_file_name(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root in (first, second, third):
        root.mkdir()
    body = ask("What is the weather in Paris?", metadata={"user_id": "u1"})
    with proxy(make_server, first, "record", fake) as s, sdk(s) as c:
        header = c.messages.with_raw_response.create(**body).headers["x-tapedeck-cassette"]
    # The same request from another client: other headers, key order, key and user id.
    reordered = dict(reversed(list({**body, "metadata": {"user_id": "u2"}}.items())))
    with proxy(make_server, second, "record", fake) as s:
        raw_post(s, "/v1/messages", reordered, **{"x-api-key": "other", "user-agent": "curl"})
    with proxy(make_server, third, "record", fake) as s, sdk(s) as c:
        c.messages.create(**ask("What is the weather in Rome?"))
    assert names(first) == names(second) == [f"{header}.yaml"]
    assert re.fullmatch(
        r"messages/claude-fake-4-5-what-is-the-weather-in-paris-[0-9a-f]{8}\.yaml", names(first)[0]
    ), names(first)
    assert len(names(third)) == 1
    assert names(third) != names(first)


def test_x_tapedeck_cassette_names_the_recording(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        c.messages.create(
            **ask("named one"), extra_headers={"x-tapedeck-cassette": "suite/chosen-name"}
        )
        with pytest.raises(anthropic.BadRequestError):
            c.messages.create(
                **ask("named two"), extra_headers={"x-tapedeck-cassette": "../outside"}
            )
    assert names(tmp_path) == ["suite/chosen-name.yaml"]
    assert fake.count == 1
    assert not (tmp_path.parent / "outside.yaml").exists()


def test_a_failed_write_leaves_the_old_cassette(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        c.messages.create(**ask("keep safe"))
    [path] = files(tmp_path)
    old = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cassette_save.os, "replace", failing_replace)
    # What the client sees when the disk is full is not the point here.
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        contextlib.suppress(anthropic.APIError, httpx2.HTTPError),
    ):
        c.messages.create(**ask("keep safe"))
    assert fake.count == 2
    assert files(tmp_path) == [path]
    assert path.read_bytes() == old


def test_concurrent_recordings_do_not_interleave(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    fake.gap_s = GAP_S  # long streams, so that they overlap
    texts = [f"question number {n} about {word}" for n, word in enumerate("abcdef")]
    texts += ["the same question twice"] * 2
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(texts))

    with proxy(make_server, tmp_path, "record", fake) as s:

        def run(i: int) -> None:
            try:
                with sdk(s) as c:
                    start.wait(timeout=5)
                    with c.messages.stream(**ask(texts[i])) as stream:
                        results[i] = stream.get_final_text()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
    assert errors == []
    assert results == {i: answer_text(t) for i, t in enumerate(texts)}
    # The streams overlapped in time at the upstream.
    seen = fake.requests()
    assert max(r.started for r in seen) < min(r.ended or 0 for r in seen)
    assert len(files(tmp_path)) == 7
    assert_no_temp_files(tmp_path)
    by_text: dict[str, list[dict[str, Any]]] = {}
    for path in files(tmp_path):
        doc = load(path)
        for interaction in doc["interactions"]:
            text = interaction["request"]["body"]["messages"][0]["content"]
            by_text.setdefault(text, []).append(interaction["response"])
    assert sorted(by_text) == sorted(set(texts))
    for text, responses in by_text.items():
        assert len(responses) == texts.count(text)
        for response in responses:
            events = response["events"]
            assert [e["event"] for e in events] == [n for n, _ in stream_events(0, text)]
            deltas = [
                e["data"]["delta"]["text"] for e in events if e["event"] == "content_block_delta"
            ]
            assert "".join(deltas) == text
            offsets = [e["at_ms"] for e in events]
            assert offsets == sorted(offsets)
    ids = [r["events"][0]["data"]["message"]["id"] for r in by_text["the same question twice"]]
    assert len(set(ids)) == 2


# --- secrets ----------------------------------------------------------------------------------


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.format_with = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format_with.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


LOGGERS = ["tapedeck", "uvicorn", "uvicorn.error", "uvicorn.access"]


@pytest.fixture
def server_log() -> Iterator[Captured]:
    """Everything tapedeck and uvicorn log, at every level."""
    handler = Captured()
    loggers = [logging.getLogger(n) for n in LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


SECRETS = [KEY, "TESTKEY-XYZ123", UPSTREAM_SECRET, "UPSTREAMLEAK", ORGANIZATION_ID, "COOKIE-SECRET"]


def test_secrets_never_reach_the_cassettes_or_the_log(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    server_log: Captured,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tapedeck")
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    content = f"secret test: please remember {KEY} for later"
    with proxy(make_server, tmp_path, "record", fake) as s:
        with sdk(s, key=KEY) as c:
            with c.messages.stream(**ask(content)) as stream:
                streamed = stream.get_final_text()
            created = c.messages.create(**ask(content), system=f"the key is {KEY}")
            c.messages.count_tokens(**tokens(content))
        by_header = raw_post(
            s,
            "/v1/messages",
            ask(content, metadata={"user_id": KEY}),
            **{"x-api-key": KEY, "cookie": "session=COOKIE-SECRET-req"},
        )
    # The client gets the upstream's answer untouched...
    assert UPSTREAM_SECRET in streamed
    assert created.content[0].type == "text"
    assert UPSTREAM_SECRET in created.content[0].text
    assert UPSTREAM_SECRET in by_header.json()["content"][0]["text"]
    # ...and the fake saw the real key both ways.
    assert [r.headers.get("authorization") for r in fake.requests()[:3]] == [f"Bearer {KEY}"] * 3
    assert fake.requests()[3].headers["x-api-key"] == KEY
    assert fake.count == 4

    recorded = files(tmp_path)
    # The raw request is the streamed one but for `stream` and metadata.user_id, which
    # matching ignores: it is recorded into the same cassette, as a second interaction.
    assert len(recorded) == 3
    for path in recorded:
        text = path.read_text(encoding="utf-8")
        for secret in SECRETS:
            assert secret not in text, (secret, path.name)
        for header in ("authorization", "x-api-key", "set-cookie", "cookie", "anthropic-organ"):
            assert f"{header}:" not in text.lower(), (header, path.name)
        assert PLACEHOLDER in text, path.name
    messages = [load(p) for p in recorded if "count" not in p.name]
    redacted = [i["response"] for d in messages for i in d["interactions"]]
    assert any(PLACEHOLDER in json.dumps(r) for r in redacted)

    assert "recorded" in server_log.text  # the capture works
    logged = server_log.text + "\n" + caplog.text
    for secret in SECRETS:
        assert secret not in logged, secret


def test_a_request_holding_a_key_replays_from_its_redacted_recording(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """The cassette holds the placeholder; the same request, key and all, must still match."""
    content = f"secret test: please remember {KEY} for later"
    with (
        proxy(make_server, tmp_path, "record", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask(content)) as stream,
    ):
        streamed = stream.get_final_text()
    assert (
        KEY
        not in only_cassette(tmp_path)["interactions"][0]["request"]["body"]["messages"][0][
            "content"
        ]
    )
    # The fake upstream echoes the prompt, key included: the recording holds neither key.
    expected = streamed.replace(UPSTREAM_SECRET, PLACEHOLDER).replace(KEY, PLACEHOLDER)
    # In replay mode a miss is a 404; in auto mode it would go upstream (and be re-recorded).
    with make_server(tmp_path) as s, sdk(s) as c, c.messages.stream(**ask(content)) as stream:
        assert stream.get_final_text() == expected
    with (
        proxy(make_server, tmp_path, "auto", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask(content)) as stream,
    ):
        assert stream.response.headers["x-tapedeck-source"] == "cassette"
        assert stream.get_final_text() == expected
    assert fake.count == 1


def test_cassette_names_and_log_lines_carry_no_key_material(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, server_log: Captured
) -> None:
    """A message that starts with a key must not put the key into the file name."""
    with proxy(make_server, tmp_path, "record", fake) as s, sdk(s) as c:
        raw = c.messages.with_raw_response.create(**ask(f"{KEY} is my key"))
    [path] = names(tmp_path)
    assert "testkey" not in path.lower()
    assert "xyz123" not in path.lower()
    assert "testkey" not in raw.headers["x-tapedeck-cassette"].lower()
    assert "recorded" in server_log.text
    assert "testkey" not in server_log.text.lower()


def test_key_shaped_query_values_are_redacted(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s, httpx.Client() as h:
        response = h.get(f"{s.base_url}/v1/models", params={"limit": "1", "token": KEY})
    assert response.status_code == 200
    assert fake.requests()[0].query["token"] == [KEY]
    text = files(tmp_path)[0].read_text(encoding="utf-8")
    assert KEY not in text
    assert PLACEHOLDER in text


# --- a recording replays like the original ----------------------------------------------------


def test_a_fresh_recording_replays_the_same_through_the_sdk(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    fake.gap_s = GAP_S  # well above the tolerance: instant replay cannot pass for paced

    def run(server: ServerThread) -> tuple[list[tuple[str, float]], Any]:
        """Each event the stream helper yields, with its time since the request was sent."""
        with sdk(server) as c:
            sent = time.perf_counter()
            with c.messages.stream(**ask("tell me a short story")) as stream:
                timeline = [(e.type, (time.perf_counter() - sent) * 1000) for e in stream]
                final = stream.get_final_message()
        return timeline, final

    with proxy(make_server, tmp_path, "record", fake) as s:
        live, live_final = run(s)
    response = only_cassette(tmp_path)["interactions"][0]["response"]
    with make_server(tmp_path, timing=Timing.parse("recorded")) as s:
        run(s)  # warm up this server; its one interaction repeats
        replay, replay_final = run(s)
    assert fake.count == 1
    assert replay_final.model_dump() == live_final.model_dump()
    assert replay_final.content[0].type == "text"
    assert replay_final.content[0].text == "tell me a short story"
    assert [t for t, _ in replay] == [t for t, _ in live]

    # The recording: arrival offsets of the upstream's events (the helper skips pings and
    # adds a "text" event beside each text delta).
    recorded = [(e["event"], e["at_ms"]) for e in response["events"] if e["event"] != "ping"]
    raw = [(t, ms) for t, ms in replay if t != "text"]
    assert [t for t, _ in raw] == [t for t, _ in recorded]
    recorded_gaps = [b - a for (_, a), (_, b) in itertools.pairwise(recorded)]
    assert sum(recorded_gaps) >= (len(response["events"]) - 1) * GAP_S * 1000 - 5
    # Replayed with `recorded` timing: headers after the recorded time, events as recorded.
    first_due = response["time_to_headers_ms"] + recorded[0][1]
    assert abs(raw[0][1] - first_due) <= 15, (raw[0][1], first_due)
    replay_gaps = [b - a for (_, a), (_, b) in itertools.pairwise(raw)]
    for got, want in zip(replay_gaps, recorded_gaps, strict=True):
        assert abs(got - want) <= 15, (replay_gaps, recorded_gaps)
    total = raw[-1][1] - raw[0][1]
    assert abs(total - sum(recorded_gaps)) <= 15, (total, sum(recorded_gaps))


def test_replayed_recording_matches_the_raw_upstream_bytes(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    body = ask("compare bytes", stream=True)
    with proxy(make_server, tmp_path, "record", fake) as s:
        live = raw_post(s, "/v1/messages", body)
    with make_server(tmp_path) as s:
        replayed = raw_post(s, "/v1/messages", body)
    expected = b"".join(
        f"event: {n}\ndata: {json.dumps(d, separators=(',', ':'))}\n\n".encode()
        for n, d in stream_events(1, "compare bytes")
    )
    assert live.content == expected
    assert replayed.content == expected
    assert replayed.headers["content-type"] == live.headers["content-type"]
    assert replayed.headers["request-id"] == live.headers["request-id"] == "req_fake_0001"
    # Secrets the upstream sent reach the live client but are not replayed from disk.
    assert live.headers["set-cookie"] == COOKIE
    assert "set-cookie" not in replayed.headers
    assert "anthropic-organization-id" not in replayed.headers
