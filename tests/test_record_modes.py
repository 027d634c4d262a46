"""Record, auto and passthrough modes against a fake upstream API, over real sockets.

What each mode sends upstream and writes to disk, streams passed through as they arrive,
and how cassettes are named and written. The client is the official SDK (or raw httpx
where the wire matters); the upstream is :mod:`fake_upstream`, which records what it
received and how each request ended. A recording is then replayed by a new tapedeck in
replay mode on the same directory, with the fake left alone, to prove the cassette alone
reproduces the exchange.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from conftest import MakeServer, sdk
from fake_upstream import (
    GAP_S,
    GATE_TIMEOUT_S,
    HEADERS_DELAY_S,
    FakeUpstream,
    answer_text,
    ask,
    event_names,
    stream_events,
    tokens,
)
from record_helpers import files, load, names, only_cassette, proxy, raw_post
from stamped import exchange
from tapedeck.cassette import save as cassette_save
from tapedeck.record import recorder as recording

#: Rounding (a cassette keeps tenths of a millisecond) and the rates of two clocks.
CLOCKS_MS = 1.0
#: How long the test holds the fake's gate once the client has the stream's first event.
HOLD_S = 0.1


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
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
    # What the fake sent, event for event (when: the next test).
    sent = stream_events(1, "what is the weather in Paris")
    assert [(e["event"], e["data"]) for e in response["events"]] == sent
    offsets = [e["at_ms"] for e in response["events"]]
    assert offsets == sorted(offsets)
    assert offsets[-1] <= response["end_at_ms"]
    assert_no_temp_files(tmp_path)


def test_a_recording_keeps_the_upstreams_timing(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    """Time to headers, each event's offset from the headers and the end, as tapedeck saw
    them arrive. Each lies between what the fake did (its own clock) and what reached the
    client (the kernel's receive timestamps): tapedeck saw each part after the fake sent it
    and before the client got it, however late any thread ran."""
    fake.gap_s = GAP_S
    with proxy(make_server, tmp_path, "record", fake) as s:
        got = exchange(s.base_url, body=ask("what is the weather in Paris", stream=True))
    assert got.status == 200
    [seen] = fake.requests()
    response = only_cassette(tmp_path)["interactions"][0]["response"]
    assert [e["event"] for e in response["events"]] == got.names == seen.sent
    assert seen.headers_at is not None
    assert seen.end_at is not None
    assert len(seen.events_at) == len(got.events)

    # tapedeck sent the request after the client sent it and before the fake read it; it
    # had the headers after the fake sent them and before the client had them.
    ttfb = response["time_to_headers_ms"]
    assert (seen.headers_at - seen.arrived_at) * 1000 - CLOCKS_MS <= ttfb
    assert ttfb <= got.ms(got.head) + CLOCKS_MS
    assert ttfb >= HEADERS_DELAY_S * 1000 - CLOCKS_MS  # the fake's own wait, at least

    def between(recorded: float, upstream: float, client: float) -> None:
        """``recorded`` ms after the headers: the part left the fake at ``upstream`` and
        reached the client at ``client``; tapedeck had the headers between
        ``seen.headers_at`` and ``got.head``."""
        earliest = (upstream - got.head) * 1000 - CLOCKS_MS
        latest = (client - seen.headers_at) * 1000 + CLOCKS_MS  # type: ignore[operator]
        assert earliest <= recorded <= latest, (recorded, earliest, latest)

    for event, upstream, (_, client) in zip(
        response["events"], seen.events_at, got.events, strict=True
    ):
        between(event["at_ms"], upstream, client)
    between(response["end_at_ms"], seen.end_at, got.end)


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
    with (
        proxy(make_server, tmp_path, "record", fake, record_errors=True) as s,
        sdk(s, max_retries=1) as c,
    ):
        final = c.messages.create(**ask("flaky service"))
    assert final.content[0].type == "text"
    assert final.content[0].text == "flaky service"
    assert [r.outcome for r in fake.requests()] == ["complete", "complete"]
    doc = only_cassette(tmp_path)
    assert [i["response"]["status"] for i in doc["interactions"]] == [529, 200]

    with make_server(tmp_path) as s:
        with sdk(s, max_retries=1) as c:
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
    write = recording.write_inside

    def slow_write(root: Path, relative: str, text: str) -> None:
        time.sleep(0.3)
        write(root, relative, text)

    monkeypatch.setattr(recording, "write_inside", slow_write)
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
    """The fake sends message_start, then waits for the test to see it through tapedeck
    (the gate, which the fake gives up on after GATE_TIMEOUT_S)."""
    got_first = threading.Event()
    received: list[str] = []
    errors: list[BaseException] = []
    first_seen: list[float] = []

    with proxy(make_server, tmp_path, mode, fake) as s:

        def read() -> None:
            try:
                with sdk(s) as c, c.messages.create(**ask("gate keeper"), stream=True) as stream:
                    for event in stream:
                        received.append(event.type)
                        if event.type == "message_start":
                            first_seen.append(time.time())
                            got_first.set()
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        arrived = got_first.wait(timeout=GATE_TIMEOUT_S * 0.8)
        time.sleep(HOLD_S)  # the upstream's pause, which the recording must show
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
        # tapedeck had message_start before the client saw it, and the next event (a ping)
        # only after the fake sent it, once the gate opened.
        assert events[2]["event"] == "ping"
        held = (seen.events_at[2] - first_seen[0]) * 1000
        assert held >= HOLD_S * 1000
        assert events[2]["at_ms"] - events[0]["at_ms"] >= held - CLOCKS_MS


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
    # Every stream holds at the fake's gate after its first two events; the gate opens once
    # all of them are open there, so they overlap whatever the machine's load.
    texts = [f"gate question number {n} about {word}" for n, word in enumerate("abcdef")]
    texts += ["gate the same question twice"] * 2
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    with proxy(make_server, tmp_path, "record", fake) as s:

        def run(i: int) -> None:
            try:
                with sdk(s) as c, c.messages.stream(**ask(texts[i])) as stream:
                    results[i] = stream.get_final_text()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        all_open = fake.wait_for(lambda: len(fake.seen) == len(texts), timeout=30)
        fake.gate.set()
        for t in threads:
            t.join(timeout=30)
    assert all_open, fake.requests()
    assert errors == []
    assert results == {i: answer_text(t) for i, t in enumerate(texts)}
    # The streams overlapped in time at the upstream: all were open when the gate opened.
    seen = fake.requests()
    assert [r.gate_opened for r in seen] == [True] * len(texts)
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
    ids = [r["events"][0]["data"]["message"]["id"] for r in by_text["gate the same question twice"]]
    assert len(set(ids)) == 2
