"""Recordings replayed like the original: JSON messages, any /v1/ path, timing and bytes.

Each exchange is recorded through tapedeck from :mod:`fake_upstream`, then replayed by a
new tapedeck in replay mode on the same directory, with the fake left alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import MakeServer, sdk
from fake_upstream import (
    BATCH_ID,
    COOKIE,
    GAP_S,
    FakeUpstream,
    ask,
    message,
    stream_events,
    tokens,
)
from record_helpers import load, names, only_cassette, proxy, raw_post
from stamped import Serve, exchange, paced_as
from tapedeck.server.runner import ServerThread

#: Rounding (a cassette keeps tenths of a millisecond) and the rates of two clocks.
CLOCKS_MS = 1.0

# --- non-stream responses ---------------------------------------------------------------------


def test_json_message_is_recorded_and_replayed_faithfully(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "record", fake) as s:
        with sdk(s) as c:
            asked = time.time()
            live = c.messages.create(**ask("a plain answer"))
            answered = time.time()
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
    # The time to headers covers the fake's wait before its headers (tapedeck sent the
    # request before the fake had it, and had the headers after the fake sent them) and
    # lies within the client's call.
    seen = fake.requests()[0]
    assert seen.headers_at is not None
    waited = (seen.headers_at - seen.arrived_at) * 1000  # HEADERS_DELAY_S, or a little more
    ttfb = first["response"]["time_to_headers_ms"]
    assert waited - CLOCKS_MS <= ttfb <= (answered - asked) * 1000 + CLOCKS_MS

    with make_server(tmp_path) as s:
        with sdk(s) as c:
            replayed = c.messages.create(**ask("a plain answer"))
        replay_raw = raw_post(s, "/v1/messages", ask("a plain answer"))
    assert replayed.model_dump() == live.model_dump()
    assert replay_raw.json() == live_raw.json()
    assert replay_raw.headers["request-id"] == live_raw.headers["request-id"]
    assert fake.count == 2


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


# --- a recording replays like the original ----------------------------------------------------


def test_a_fresh_recording_replays_the_same_through_the_sdk(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    fake.gap_s = GAP_S  # well above the event loop's timer resolution
    question = ask("tell me a short story")

    def run(server: ServerThread | Serve) -> tuple[float, list[tuple[str, float]], Any]:
        """When the stream helper had the headers, each event it yields and when (wall
        clock), and the final message."""
        with (
            sdk(server) as c,  # type: ignore[arg-type]  # a Serve has the base_url it uses
            c.messages.stream(**question) as stream,
        ):
            head = time.time()
            timeline = [(e.type, time.time()) for e in stream]
            final = stream.get_final_message()
        return head, timeline, final

    with proxy(make_server, tmp_path, "record", fake) as s:
        live_head, live, live_final = run(s)
    [seen] = fake.requests()
    response = only_cassette(tmp_path)["interactions"][0]["response"]
    events = response["events"]
    assert [e["event"] for e in events] == seen.sent

    # The recording: each event's arrival after the headers, as tapedeck saw it: after the
    # fake sent it, before the stream helper yielded it (it skips pings and adds a "text"
    # event beside each text delta), however late any thread of this process ran.
    assert seen.headers_at is not None
    yielded = [at for t, at in live if t != "text"]
    pairs = zip(events, seen.events_at, strict=True)
    kept = [(e, sent) for e, sent in pairs if e["event"] != "ping"]
    assert [e["event"] for e, _ in kept] == [t for t, _ in live if t != "text"]
    for (event, sent), got in zip(kept, yielded, strict=True):
        earliest = (sent - live_head) * 1000 - CLOCKS_MS
        latest = (got - seen.headers_at) * 1000 + CLOCKS_MS
        assert earliest <= event["at_ms"] <= latest, (event["event"], earliest, latest)

    # Replayed with `recorded` timing by a tapedeck process of its own: the same through
    # the SDK, and on the wire each part when the recording says (stamped.paced_as).
    with Serve(tmp_path, "--timing", "recorded") as served:
        _, replay, replay_final = run(served)
        ttfb = response["time_to_headers_ms"]
        due = [ttfb, *(ttfb + e["at_ms"] for e in events)]
        due.append(max(due[-1], ttfb + response["end_at_ms"]))
        paced_as(lambda: exchange(served.base_url, body={**question, "stream": True}), due)
    assert fake.count == 1
    assert replay_final.model_dump() == live_final.model_dump()
    assert replay_final.content[0].type == "text"
    assert replay_final.content[0].text == "tell me a short story"
    assert [t for t, _ in replay] == [t for t, _ in live]


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
