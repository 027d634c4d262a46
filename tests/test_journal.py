"""The request journal over a real server: what each entry says, its bounds, its scopes,
its live stream, and that it holds what a recording would hold and never a key.

Where each fault acted is checked against the wire, on replayed and live streams alike, in
test_pipeline_parity.py.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conformance_sdk import CUT, raises_like
from conftest import CASSETTES, HELLO, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import only_cassette, proxy
from tapedeck.observe.entries import BrokenRule, JournalEntry
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing
from tapedeck.validation import Validate

KEY = "sk-ant-api03-JOURNALKEY-abc123_Zz"
FIELDS = [
    "id",
    "at",
    "test_id",
    "method",
    "path",
    "stream",
    "status",
    "source",
    "cassette",
    "interaction",
    "faults",
    "miss",
    "events",
    "bytes",
    "duration_ms",
    "end",
    "error",
    "broken",
    "upstream_ms",
    "request",
    "platform",
]


def entries(server: ServerThread, test_id: str | None = None, **params: Any) -> list[Any]:
    if test_id is not None:
        params["test_id"] = test_id
    response = httpx.get(f"{server.base_url}/_tapedeck/journal", params=params, timeout=10)
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["entries"]
    return found


def client(server: ServerThread, test_id: str, **kwargs: Any) -> anthropic.Anthropic:
    headers = {"x-tapedeck-test-id": test_id, **kwargs.pop("default_headers", {})}
    return sdk(server, default_headers=headers, **kwargs)


def test_a_replayed_stream(server: ServerThread) -> None:
    with (
        client(server, "replayed", api_key=KEY) as c,
        c.messages.stream(**HELLO) as stream,
    ):
        assert stream.get_final_text() == "Hello!"

    (entry,) = entries(server, "replayed")
    assert list(entry) == FIELDS
    assert entry["test_id"] == "replayed"
    assert (entry["method"], entry["path"], entry["stream"]) == ("POST", "/v1/messages", True)
    assert (entry["status"], entry["source"]) == (200, "cassette")
    assert (entry["cassette"], entry["interaction"]) == ("streaming/hello", 0)
    assert (entry["faults"], entry["miss"], entry["error"]) == ([], None, None)
    assert (entry["events"], entry["end"]) == (8, "complete")
    assert entry["bytes"] > 0
    assert 0 < entry["duration_ms"] < 10_000
    at = datetime.datetime.fromisoformat(entry["at"])
    assert abs(at - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(minutes=1)
    request = entry["request"]
    assert request["body"] == {**HELLO, "stream": True}
    assert set(request["headers"]) == {"anthropic-version"}  # the headers a recording keeps
    assert KEY not in json.dumps(entry)


def test_each_source(server: ServerThread) -> None:
    with client(server, "sources") as c:
        c.messages.create(**HELLO)  # a streamed recording, answered as JSON
        with pytest.raises(anthropic.OverloadedError):
            c.messages.create(**HELLO, extra_headers={"x-tapedeck-fault": "status:code=529"})
        with pytest.raises(anthropic.NotFoundError):
            c.messages.create(**{**HELLO, "max_tokens": 255})
        with pytest.raises(anthropic.BadRequestError):
            c.messages.create(**HELLO, extra_headers={"x-tapedeck-timing": "fast"})
    bad = httpx.post(
        f"{server.base_url}/v1/messages",
        content=b"{not json",
        headers={"x-tapedeck-test-id": "sources", "content-type": "application/json"},
    )
    assert bad.status_code == 400

    found = entries(server, "sources")
    assert [(e["source"], e["status"]) for e in found] == [
        ("synthesized", 200),
        ("fault", 529),
        ("miss", 404),
        ("error", 400),
        ("error", 400),
    ]
    synthesized, fault, miss, bad_timing, not_json = found
    assert (synthesized["stream"], synthesized["events"]) == (False, 0)
    assert fault["faults"] == [{"spec": "status:code=529", "kind": "status", "events": None}]
    assert fault["cassette"] == "streaming/hello"
    assert miss["error"]["type"] == "not_found_error"
    assert miss["miss"] == {
        "reason": "no match",
        "cassette": "streaming/hello",
        "interaction": 0,
        "where": f"{CASSETTES}/streaming/hello.yaml:12",
        "differences": [
            {
                "field": "max_tokens",
                "incoming": 255,
                "recorded": 256,
                "shown": "max_tokens: 255 != 256",
                "window": None,
            }
        ],
        "client": {"name": "anthropic-python", "release": anthropic.__version__},
        "recorded_client": None,  # a hand-written cassette
    }
    assert "x-tapedeck-timing" in bad_timing["error"]["message"]
    assert bad_timing["request"]["body"] == HELLO  # read before the header was refused
    assert not_json["request"] == {"method": "POST", "path": "/v1/messages"}
    assert not_json["test_id"] == "sources"


def test_a_used_up_sequence_is_a_miss(make_server: MakeServer, deck_dir: Path) -> None:
    with make_server(deck_dir, sequence_end="error") as s, client(s, "seq") as c:
        for _ in range(2):
            c.messages.create(
                **{
                    **HELLO,
                    "model": "m",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": "twice"}],
                }
            )
        with pytest.raises(anthropic.NotFoundError):
            c.messages.create(
                **{
                    **HELLO,
                    "model": "m",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": "twice"}],
                }
            )
        found = entries(s, "seq")
    assert [e["interaction"] for e in found] == [0, 1, None]
    assert found[2]["miss"] == {
        "reason": "sequence used up",
        "cassette": "twice",
        "interaction": 1,
        "where": None,
        "differences": [],
        "client": None,
        "recorded_client": None,
    }


def test_it_is_bounded_oldest_out(make_server: MakeServer) -> None:
    with make_server(journal_size=3) as s, client(s, "bounded") as c:
        for _ in range(5):
            c.messages.create(**HELLO)
        found = entries(s)
    assert [e["id"] for e in found] == [3, 4, 5]


def test_scopes_since_and_clearing(make_server: MakeServer) -> None:
    with make_server() as s:
        for test_id in ("a", "b", "a"):
            with client(s, test_id) as c:
                c.messages.create(**HELLO)
        assert [e["test_id"] for e in entries(s)] == ["a", "b", "a"]
        assert [e["id"] for e in entries(s, "a")] == [1, 3]
        by_header = httpx.get(
            f"{s.base_url}/_tapedeck/journal", headers={"x-tapedeck-test-id": "b"}, timeout=10
        )
        assert [e["id"] for e in by_header.json()["entries"]] == [2]
        assert [e["id"] for e in entries(s, since=1)] == [2, 3]
        bad = httpx.get(f"{s.base_url}/_tapedeck/journal", params={"since": "x"}, timeout=10)
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"

        one = httpx.delete(
            f"{s.base_url}/_tapedeck/journal", headers={"x-tapedeck-test-id": "a"}, timeout=10
        )
        assert one.json() == {"status": "ok", "cleared": 2}
        assert [e["test_id"] for e in entries(s)] == ["b"]
        every = httpx.delete(f"{s.base_url}/_tapedeck/journal", timeout=10)
        assert every.json() == {"status": "ok", "cleared": 1}
        assert entries(s) == []


def test_turned_off(make_server: MakeServer) -> None:
    with make_server(journal_size=0) as s:
        with client(s, "off") as c:
            c.messages.create(**HELLO)
        for path in ("/_tapedeck/journal", "/_tapedeck/journal/stream"):
            off = httpx.get(s.base_url + path, timeout=10)
            assert off.status_code == 404
            assert off.json()["error"]["message"] == (
                "tapedeck: the request journal is off (journal_size is 0)"
            )


def test_the_rules_a_request_breaks(make_server: MakeServer) -> None:
    # The SDK sends anthropic-version 2026-10-21, which removed temperature.
    warm = {**HELLO, "extra_body": {"temperature": 0.5}}
    with make_server() as s, client(s, "refused") as c:
        with pytest.raises(anthropic.BadRequestError):
            c.messages.create(**warm)
        c.messages.create(**HELLO)
        refused, fine = entries(s, "refused")
    assert (refused["status"], refused["source"]) == (400, "error")
    ((rule, message),) = [(b["rule"], b["message"]) for b in refused["broken"]]
    assert rule == "sampling_removed"
    assert refused["error"] == {"type": "invalid_request_error", "message": message}
    assert fine["broken"] == []
    typed = JournalEntry.from_json(refused)
    assert typed.broken == (BrokenRule("sampling_removed", message),)
    assert typed.line().startswith("POST /v1/messages 400 error invalid_request_error: ")
    assert ", breaks: sampling_removed, end complete, " in typed.line()

    # warn: answered anyway (temperature is not matched on here), the rule still noted.
    loose = {"validate": Validate.WARN, "ignore_body_fields": ("temperature",)}
    with make_server(**loose) as s, client(s, "warned") as c:
        c.messages.create(**warm)
        (warned,) = entries(s, "warned")
    assert (warned["status"], warned["source"], warned["error"]) == (200, "synthesized", None)
    assert [b["rule"] for b in warned["broken"]] == ["sampling_removed"]


def test_large_bodies_are_left_out(make_server: MakeServer) -> None:
    big = {**HELLO, "system": "x" * 2000}
    with make_server(journal_body_limit=1000) as s, client(s, "big") as c:
        with pytest.raises(anthropic.NotFoundError):
            c.messages.create(**big)
        c.messages.create(**HELLO)
        large, small = entries(s, "big")
    assert "body" not in large["request"]
    assert large["request"]["body_omitted"] > 2000
    assert large["miss"]["differences"][0]["field"] == "system"  # still explained
    assert small["request"]["body"] == HELLO


def test_the_journal_holds_at_most_journal_max_bytes(make_server: MakeServer) -> None:
    """Past ``journal_max_bytes`` the oldest bodies are left out first (each noted as for
    ``journal_body_limit``), and only then do the oldest entries drop out."""
    bodies = [{**HELLO, "system": f"{n} " + "x" * 60_000} for n in range(8)]
    with make_server(journal_max_bytes=1 << 20) as s, client(s, "bytes") as c:
        for body in bodies:  # each a miss whose body counts about 240 kB
            with pytest.raises(anthropic.NotFoundError):
                c.messages.create(**body)
        kept = entries(s, "bytes")
    assert len(kept) == 8  # the entries stay; the bodies of the oldest went
    with_body = [e["request"]["body"] for e in kept if "body" in e["request"]]
    assert 2 <= len(with_body) <= 4
    assert with_body == bodies[-len(with_body) :]
    for entry in kept[: -len(with_body)]:
        assert "body" not in entry["request"]
        assert entry["request"]["body_omitted"] > 60_000
        assert entry["miss"]["differences"][0]["field"] == "system"  # still explained

    with make_server(journal_max_bytes=64 * 1024) as s, client(s, "many") as c:
        for _ in range(100):
            c.messages.create(**HELLO)
        kept = entries(s, "many")
    assert 10 <= len(kept) < 40  # about 2.4 kB each, the newest kept
    assert kept[-1]["id"] == 100
    assert [e["id"] for e in kept] == list(range(101 - len(kept), 101))


def test_a_client_that_leaves(make_server: MakeServer, deck_dir: Path) -> None:
    with make_server(deck_dir, timing=Timing.parse("recorded")) as s:
        with (
            httpx.Client(base_url=s.base_url, timeout=10) as http,
            http.stream(
                "POST",
                "/v1/messages",
                json={
                    "model": "m",
                    "max_tokens": 16,
                    "stream": True,
                    "messages": [{"role": "user", "content": "gap"}],
                },
                headers={"x-tapedeck-test-id": "leaves"},
            ) as response,
        ):
            next(response.iter_raw())
        deadline = time.monotonic() + 5
        while not (found := entries(s, "leaves")) and time.monotonic() < deadline:
            time.sleep(0.02)
    (entry,) = found
    assert entry["end"] == "client_left"
    assert 0 < entry["events"] < 6


def test_a_cut_stream(server: ServerThread) -> None:
    spec = "disconnect:after=2"
    with (
        client(server, "cut") as c,
        raises_like(CUT),
        c.messages.stream(**HELLO, extra_headers={"x-tapedeck-fault": spec}) as stream,
    ):
        stream.until_done()
    (entry,) = entries(server, "cut")
    assert (entry["end"], entry["events"]) == ("cut", 2)
    assert entry["faults"] == [{"spec": spec, "kind": "disconnect", "events": [2]}]


def test_the_live_stream(make_server: MakeServer) -> None:
    with make_server() as s, client(s, "live") as c:
        c.messages.create(**HELLO)  # before anyone watches
        got: list[dict[str, Any]] = []
        ready = threading.Event()

        def watch() -> None:
            with (
                httpx.Client(base_url=s.base_url, timeout=10) as http,
                http.stream("GET", "/_tapedeck/journal/stream", params={"since": 0}) as stream,
            ):
                assert stream.headers["content-type"].startswith("text/event-stream")
                ready.set()
                event = ""
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "entry":
                        got.append(json.loads(line[6:]))
                        if len(got) == 3:
                            return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert ready.wait(5)
        c.messages.create(**HELLO)
        with client(s, "other") as other:
            other.messages.create(**HELLO)
        watcher.join(5)
    assert [(e["id"], e["test_id"]) for e in got] == [(1, "live"), (2, "live"), (3, "other")]


def test_the_live_stream_ends_when_the_server_stops(make_server: MakeServer) -> None:
    ended: list[str] = []
    with make_server() as s:
        opened = threading.Event()

        def watch() -> None:
            try:
                with (
                    httpx.Client(base_url=s.base_url, timeout=10) as http,
                    http.stream("GET", "/_tapedeck/journal/stream") as stream,
                ):
                    opened.set()
                    for _ in stream.iter_lines():
                        pass
            except httpx.HTTPError as exc:
                ended.append(repr(exc))
            else:
                ended.append("complete")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert opened.wait(5)  # the stream is open: its headers have arrived
    watcher.join(10)
    # The server ended the stream: a complete body. Had it been left to uvicorn, its graceful
    # shutdown would have given up waiting and cut the connection mid-body.
    assert ended == ["complete"]


@pytest.mark.one_process
def test_it_holds_what_a_recording_holds(
    make_server: MakeServer, tmp_path: Path, fake: FakeUpstream
) -> None:
    body = ask("hello there")
    with proxy(make_server, tmp_path, "once", fake, redact_patterns=("acct-[0-9]+",)) as s:
        with client(s, "recorded", api_key=KEY) as c:
            c.messages.create(
                **{**body, "metadata": {"user_id": "acct-123456"}},
                extra_headers={"anthropic-beta": "tools-2024", "cookie": f"k={KEY}"},
                extra_query={"q": KEY},
            )
        (entry,) = entries(s, "recorded")
    written = only_cassette(tmp_path)["interactions"][0]["request"]
    # The cassette also says which client recorded it; the journal names clients in misses.
    assert written.pop("client") == {"name": "anthropic-python", "release": anthropic.__version__}
    assert entry["request"] == written
    assert entry["source"] == "upstream"
    assert entry["cassette"] is not None
    assert entry["upstream_ms"] > 0
    assert KEY not in json.dumps(entry)
    assert "acct-123456" not in json.dumps(entry)


def test_a_body_left_out_is_not_kept_in_its_shape_either() -> None:
    """The request's shape holds the body again (and its key a copy as text): an entry
    whose body is left out must not keep it there."""
    from tapedeck.cassette.matching import RequestShape
    from tapedeck.server.request import Request

    body = {**HELLO, "system": "x" * 300_000}
    shape = RequestShape("POST", "/v1/messages", (), (), body)
    request = Request("POST", "/v1/messages", body, shape, False, "t", None, None, None)
    kept = request.without_body()
    assert kept.body is None
    assert kept.shape.body is None
    assert len(kept.shape.key) < 200
    assert (kept.method, kept.path, kept.test_id) == ("POST", "/v1/messages", "t")


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "\xed\xa0\x80"}', b'{"a": "\xff"}', b"\xff\xfe{}"],
    ids=["surrogate", "ff", "bom"],
)
def test_a_body_that_is_not_utf8_leaves_the_journal_readable(
    make_server: MakeServer, raw: bytes
) -> None:
    """A refused body that is not UTF-8 is not kept as JSON (json.loads of bytes would read
    an encoded surrogate into a string no JSON writer can encode); the journal, its live
    stream's source, still answers."""
    with make_server() as s:
        refused = httpx.post(
            f"{s.base_url}/v1/messages",
            content=raw,
            headers={"content-type": "application/json", "x-tapedeck-test-id": "bad-utf8"},
            timeout=10,
        )
        assert refused.status_code == 400, refused.text
        (entry,) = entries(s, "bad-utf8")
    assert entry["status"] == 400
    assert "body" not in entry["request"]


def test_an_entry_that_leaves_the_journal_leaves_its_body_behind() -> None:
    """A live reader still to send an entry the journal dropped sends it without its body:
    what readers hold stays within the journal's bytes. Without a reader nothing is copied."""
    from tapedeck.cassette.matching import RequestShape
    from tapedeck.observe.exchange import Exchange
    from tapedeck.observe.journal import Journal
    from tapedeck.server.request import Request

    def exchange(n: int) -> Exchange:
        body = {**HELLO, "system": f"{n} " + "x" * 1000}
        shape = RequestShape("POST", "/v1/messages", (), (), body)
        made = Exchange()
        made.request = Request(
            "POST", "/v1/messages", body, shape, False, "t", None, None, None, size=1010
        )
        return made

    journal = Journal(size=2, body_limit=1 << 20, max_bytes=1 << 20)
    with journal.watch(None, None) as watcher:
        sent = [exchange(n) for n in range(3)]
        for each in sent:
            journal.add(each)
        assert list(journal.entries) == sent[1:]
        assert list(watcher.pending) == sent[1:]
        # A reader that had taken it to send (its batch) sends it without its body.
        assert sent[0].as_json()["request"]["body_omitted"] == 1010
        assert "body" not in sent[0].as_json()["request"]
    assert journal.bytes == sum(e.kept for e in journal.entries)
    journal.add(exchange(3))  # no reader now: the one dropped is simply let go
    assert sent[1].request is not None
    assert sent[1].request.body is not None
    assert journal.bytes == sum(e.kept for e in journal.entries)
    assert journal.clear() == 2
    assert journal.bytes == 0
