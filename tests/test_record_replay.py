"""Recordings replayed like the original: JSON messages, any /v1/ path, timing and bytes.

Each exchange is recorded through tapedeck from :mod:`fake_upstream`, then replayed by a
new tapedeck in replay mode on the same directory, with the fake left alone.
"""

from __future__ import annotations

import itertools
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
    HEADERS_DELAY_S,
    FakeUpstream,
    ask,
    message,
    stream_events,
    tokens,
)
from record_helpers import load, names, only_cassette, proxy, raw_post
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

# --- non-stream responses ---------------------------------------------------------------------


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
    # The fake sleeps GAP_S between sends; a first event that reaches tapedeck late (a busy
    # machine) shortens the recorded span by that delay, so allow one scheduling delay.
    assert sum(recorded_gaps) >= (len(response["events"]) - 1) * GAP_S * 1000 - 25
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
