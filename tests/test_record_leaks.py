"""No key reaches a cassette, a file name or a log line, however it is written; and a
recording that cannot be written costs the client nothing but a clear error.

Every case greps the cassette directory (contents and names) and the captured log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from pathlib import Path

import anthropic
import httpx
import pytest

from conftest import LogLines, MakeServer, sdk
from fake_upstream import UPSTREAM_SECRET, FakeUpstream, ask
from record_helpers import files, load, names, proxy

CONVO = {"x-tapedeck-cassette": "convo"}
#: The log line of an answered POST /v1/messages.
POSTED = r"^POST /v1/messages 200 "


def assert_nowhere(root: Path, log: LogLines, logged: str, *fragments: str) -> None:
    """None of ``fragments`` in any file's name or text under ``root``, or in the log, once
    something was recorded and the request's log line (the pattern ``logged``) has come."""
    assert files(root), "nothing recorded"
    assert log.wait_for(logged), f"no log line {logged!r} in {log.lines()}"
    lines = "\n".join(log.lines())
    for fragment in fragments:
        for path in files(root):
            assert fragment not in path.relative_to(root).as_posix(), path
            assert fragment not in path.read_text(encoding="utf-8"), path
        assert fragment not in lines, lines


# --- 9. keys, however they are written ----------------------------------------------------


def test_a_json_escaped_key_in_the_body(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    raw = json.dumps(ask("my key is sk-ant-api03-ESCAPEDKEY1234 ok")).replace(
        "sk-ant", "sk\\u002dant"
    )
    assert "ESCAPEDKEY1234" in raw
    assert "sk-ant" not in raw
    with proxy(make_server, tmp_path, "all", fake) as s, httpx.Client(base_url=s.base_url) as h:
        answer = h.post("/v1/messages", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 200
    assert "sk-ant-api03-ESCAPEDKEY1234" in answer.text  # the fake echoes it to the client
    (cassette,) = files(tmp_path)
    [interaction] = load(cassette)["interactions"]
    redacted = "my key is sk-ant-REDACTED ok"
    assert interaction["request"]["body"]["messages"][0]["content"] == redacted
    assert interaction["response"]["body"]["content"][0]["text"] == redacted
    assert_nowhere(tmp_path, tapedeck_log, POSTED, "ESCAPEDKEY1234", "escapedkey1234")

    # and the request still matches its recording
    with (
        proxy(make_server, tmp_path, "none", "http://127.0.0.1:9") as s,
        httpx.Client(base_url=s.base_url) as h,
    ):
        again = h.post("/v1/messages", content=raw, headers={"content-type": "application/json"})
    assert again.status_code == 200, again.text


def test_a_percent_encoded_key_in_the_query(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with proxy(make_server, tmp_path, "all", fake) as s, httpx.Client(base_url=s.base_url) as h:
        answer = h.get("/v1/models?limit=1&note=sk%2Dant%2Dapi03%2DQUERYKEY9999")
    assert answer.status_code == 200
    # The key went upstream as sent, and the exchange was recorded without it.
    assert fake.requests()[0].query["note"] == ["sk-ant-api03-QUERYKEY9999"]
    (cassette,) = files(tmp_path)
    [interaction] = load(cassette)["interactions"]
    assert interaction["request"]["path"] == "/v1/models"
    assert interaction["request"]["query"] == {"limit": "1", "note": "sk-ant-REDACTED"}
    assert interaction["response"]["status"] == 200
    assert interaction["response"]["body"] == answer.json()
    logged = r"^GET /v1/models 200 "
    assert_nowhere(tmp_path, tapedeck_log, logged, "QUERYKEY9999", "querykey9999", "%2DQUERY")


def test_a_key_in_the_url_path(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with proxy(make_server, tmp_path, "all", fake) as s, httpx.Client(base_url=s.base_url) as h:
        answer = h.get("/v1/models/sk-ant-api03-PATHKEY7777")
    assert answer.status_code == 404  # the fake's own answer, recorded (not a transient failure)
    (cassette,) = [p for p in files(tmp_path) if p.suffix == ".yaml"]
    assert load(cassette)["interactions"][0]["request"]["path"] == "/v1/models/sk-ant-REDACTED"
    logged = r"^GET /v1/models/sk-ant-REDACTED 404 "
    assert_nowhere(tmp_path, tapedeck_log, logged, "PATHKEY7777", "pathkey7777")


def test_a_key_split_across_two_deltas(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with (
        proxy(make_server, tmp_path, "all", fake) as s,
        sdk(s) as c,
        c.messages.stream(**ask("splitsecret now"), extra_headers=CONVO) as stream,
    ):
        text = stream.get_final_text()
    assert UPSTREAM_SECRET in text  # the client got what the upstream sent
    deltas = [
        e["data"]["delta"]["text"]
        for e in load(tmp_path / "convo.yaml")["interactions"][0]["response"]["events"]
        if e["event"] == "content_block_delta"
    ]
    assert "".join(deltas).endswith("upstream says sk-ant-REDACTED")
    half = len(UPSTREAM_SECRET) // 2
    assert_nowhere(tmp_path, tapedeck_log, POSTED, UPSTREAM_SECRET[:half], UPSTREAM_SECRET[half:])


def test_a_users_own_pattern_is_redacted_too(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    settings = {"redact_patterns": (r"acct-\d{6}",)}
    with proxy(make_server, tmp_path, "all", fake, **settings) as s, sdk(s) as c:
        c.messages.create(**ask("account acct-123456 please"))
    (cassette,) = files(tmp_path)
    assert "[REDACTED]" in cassette.read_text(encoding="utf-8")
    assert_nowhere(tmp_path, tapedeck_log, POSTED, "123456")


def test_a_miss_line_names_fields_not_values(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with make_server() as s, sdk(s) as c, pytest.raises(anthropic.NotFoundError) as caught:
        c.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "private words"}],
        )
    assert "private words" in caught.value.message  # the client sees what it sent
    (line,) = tapedeck_log.wait_for("miss: ")
    assert "private words" not in line
    assert "messages[0].content: text of 13 chars #" in line


# --- 10. a recording that cannot be written -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [("x" * 300, "File name too long"), ("blocker/inner", "Not a directory")],
)
def test_a_write_the_os_refuses(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    tapedeck_log: LogLines,
    name: str,
    reason: str,
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder\n")
    headers = {"x-tapedeck-cassette": name}
    with proxy(make_server, tmp_path, "all", fake) as s, sdk(s) as c:
        with pytest.raises(anthropic.InternalServerError) as caught:
            c.messages.create(**ask("json answer"), extra_headers=headers)
        with c.messages.stream(**ask("streamed answer"), extra_headers=headers) as stream:
            assert stream.get_final_text() == "streamed answer"  # the stream completes

    message = caught.value.message
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert "could not record cassette" in message
    assert name[:40] in message
    assert reason in message
    failed = tapedeck_log.wait_for("^recording failed: ", count=2)
    assert len(failed) == 2
    assert all(reason in line and "\n" not in line for line in failed)
    assert names(tmp_path) == ["blocker"]


def test_a_link_swapped_in_during_a_stream_does_not_lead_the_write_outside(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    root, outside = tmp_path / "cassettes", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    headers = {"x-tapedeck-cassette": "sub/recorded"}
    started = threading.Event()
    result: list[str] = []
    with proxy(make_server, root, "all", fake) as s, sdk(s) as c:

        def read() -> None:
            request = ask("gate then the rest")
            with c.messages.create(**request, stream=True, extra_headers=headers) as stream:
                for event in stream:
                    started.set()  # mid-stream: the upstream holds the rest at its gate
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        result.append(event.delta.text)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        arrived = started.wait(5)
        shutil.rmtree(root / "sub")
        os.symlink(outside, root / "sub")
        fake.gate.set()
        reader.join(10)

    assert arrived
    assert "".join(result) == "gate then the rest"
    assert list(outside.iterdir()) == []
    assert tapedeck_log.wait_for("^recording failed: .*sub/recorded")


# --- hooks --------------------------------------------------------------------------------


def test_hooks_given_to_serve_change_or_drop_recordings(tmp_path: Path, fake: FakeUpstream) -> None:
    import tapedeck

    def scrub(request: tapedeck.RecordedRequest) -> tapedeck.RecordedRequest | None:
        if "skip" in json.dumps(request.body):
            return None
        return request

    def tag(response: tapedeck.RecordedResponse) -> tapedeck.RecordedResponse:
        return dataclasses.replace(response, headers=(*response.headers, ("x-scrubbed", "yes")))

    with (
        tapedeck.serve(
            tmp_path,
            mode="all",
            upstream=fake.base_url,
            timing="instant",
            before_record_request=scrub,
            before_record_response=tag,
        ) as s,
        sdk(s) as c,
    ):
        c.messages.create(**ask("keep this one"), extra_headers=CONVO)
        c.messages.create(**ask("skip this one"), extra_headers=CONVO)

    (interaction,) = load(tmp_path / "convo.yaml")["interactions"]
    assert interaction["request"]["body"]["messages"][0]["content"] == "keep this one"
    assert interaction["response"]["headers"]["x-scrubbed"] == "yes"


def test_a_hook_named_in_the_config_file(
    tmp_path: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tapedeck

    (tmp_path / "my_hooks.py").write_text(
        "def nothing(response):\n    return None\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "tapedeck.yaml"
    config.write_text("before_record_response: my_hooks:nothing\n", encoding="utf-8")
    root = tmp_path / "cassettes"
    root.mkdir()
    with (
        tapedeck.serve(root, mode="all", upstream=fake.base_url, config=config) as s,
        sdk(s) as c,
    ):
        c.messages.create(**ask("dropped by the hook"))
    assert list(root.iterdir()) == []

    config.write_text("before_record_response: my_hooks:missing\n", encoding="utf-8")
    with pytest.raises(tapedeck.ConfigError, match=r"tapedeck.yaml:1: before_record_response: "):
        tapedeck.serve(root, config=config).__enter__()
