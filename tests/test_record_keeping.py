"""Recording keeps what was recorded: modes that add, only good answers kept, a refused key
writing nothing, and recordings that replay across SDK releases and shapes.

Each test names the defect it guards against; they ran red before the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conformance_sdk import CUT, raises_like
from conftest import LogLines, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import load, names, proxy
from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

CONVO = {"x-tapedeck-cassette": "convo"}
GONE = "http://127.0.0.1:9"  # nothing listens there: a replay that calls out fails


def texts(path: Path) -> list[str]:
    """The user messages of a cassette's interactions, in order."""
    return [i["request"]["body"]["messages"][-1]["content"] for i in load(path)["interactions"]]


def statuses(path: Path) -> list[int]:
    return [i["response"]["status"] for i in load(path)["interactions"]]


# --- 1. adding to a named cassette never deletes what was in it ---------------------------


@pytest.mark.parametrize("mode", ["new_episodes", "auto", "once"])
def test_a_second_run_adds_to_a_named_cassette(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, mode: str
) -> None:
    with proxy(make_server, tmp_path, "new_episodes", fake) as s, sdk(s) as c:
        c.messages.create(**ask("turn one"), extra_headers=CONVO)
    with proxy(make_server, tmp_path, mode, fake) as s, sdk(s) as c:
        c.messages.create(**ask("turn one"), extra_headers=CONVO)  # replayed
        if mode != "once":  # once: convo exists, so it only replays
            c.messages.create(**ask("turn two"), extra_headers=CONVO)

    expected = ["turn one"] if mode == "once" else ["turn one", "turn two"]
    assert texts(tmp_path / "convo.yaml") == expected
    assert fake.count == len(expected)
    with proxy(make_server, tmp_path, "none", GONE) as s, sdk(s) as c:
        for text in expected:
            reply = c.messages.create(**ask(text), extra_headers=CONVO)
            assert reply.content[0].type == "text"
            assert reply.content[0].text == text


def test_all_mode_re_records_only_the_requests_the_run_touches(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with proxy(make_server, tmp_path, "new_episodes", fake) as s, sdk(s) as c:
        c.messages.create(**ask("turn one"), extra_headers=CONVO)
        c.messages.create(**ask("turn two"), extra_headers=CONVO)
    before = load(tmp_path / "convo.yaml")["interactions"]
    with proxy(make_server, tmp_path, "all", fake) as s, sdk(s) as c:
        c.messages.create(**ask("turn two"), extra_headers=CONVO)

    after = load(tmp_path / "convo.yaml")["interactions"]
    assert texts(tmp_path / "convo.yaml") == ["turn one", "turn two"]
    assert after[0] == before[0]  # untouched
    assert after[1]["response"]["body"]["id"] != before[1]["response"]["body"]["id"]


def test_concurrent_recordings_into_one_cassette_all_land(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    import concurrent.futures

    with proxy(make_server, tmp_path, "new_episodes", fake) as s:

        def one(n: int) -> int:
            with sdk(s) as c:
                c.messages.create(**ask(f"parallel {n}"), extra_headers=CONVO)
            return n

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(8)))

    assert sorted(texts(tmp_path / "convo.yaml")) == sorted(f"parallel {n}" for n in range(8))


# --- 2. transient failures reach the client but are not kept -------------------------------


@pytest.mark.parametrize("mode", ["new_episodes", "all"])
def test_a_529_then_a_200_keeps_only_the_200(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, mode: str
) -> None:
    with proxy(make_server, tmp_path, mode, fake) as s, sdk(s, max_retries=1) as c:
        response = c.messages.with_raw_response.create(**ask("flaky service"), extra_headers=CONVO)
    assert response.retries_taken == 1  # the client did see the 529
    assert statuses(tmp_path / "convo.yaml") == [200]

    with proxy(make_server, tmp_path, "none", GONE) as s, sdk(s) as c:
        for _ in range(3):  # answered from the cassette, every time
            assert c.messages.create(**ask("flaky service"), extra_headers=CONVO).content


def test_record_errors_keeps_a_real_529_then_200_sequence(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with (
        proxy(make_server, tmp_path, "new_episodes", fake, record_errors=True) as s,
        sdk(s, max_retries=1) as c,
    ):
        c.messages.create(**ask("flaky service"), extra_headers=CONVO)

    assert statuses(tmp_path / "convo.yaml") == [529, 200]
    with proxy(make_server, tmp_path, "none", GONE) as s, sdk(s, max_retries=1) as c:
        response = c.messages.with_raw_response.create(**ask("flaky service"), extra_headers=CONVO)
    assert response.retries_taken == 1


def test_a_stream_that_ends_in_an_error_event_is_not_kept(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    with (
        proxy(make_server, tmp_path, "new_episodes", fake) as s,
        sdk(s) as c,
        pytest.raises(anthropic.APIStatusError),
        c.messages.stream(**ask("streamerror please"), extra_headers=CONVO) as stream,
    ):
        stream.until_done()
    assert names(tmp_path) == []
    assert tapedeck_log.wait_for("^not recorded into convo: ")


# --- 3. a refused key never writes over a good cassette ------------------------------------


def scripted(*answers: int) -> Callable[[httpx.Request], httpx.Response]:
    """A stand-in API answering with these statuses in turn (200: a message)."""
    left = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        status = left.pop(0) if len(left) > 1 else left[0]
        if status != 200:
            error = {"type": "error", "error": {"type": "authentication_error", "message": "no"}}
            return httpx.Response(status, json=error)
        message = {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": "good answer"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 2},
        }
        return httpx.Response(200, json=message)

    return answer


def serving(root: Path, mode: Mode, upstream: Callable[[httpx.Request], httpx.Response]) -> Any:
    settings = Settings(
        cassettes=root,
        port=0,
        mode=mode,
        upstream="http://api.invalid",
        timing=Timing.parse("instant"),
    )
    return ServerThread(settings, transport=httpx.MockTransport(upstream))


def test_a_refused_key_writes_nothing_and_says_so_once(
    tmp_path: Path, tapedeck_log: LogLines
) -> None:
    with serving(tmp_path, Mode.ALL, scripted(200)) as s, sdk(s) as c:
        c.messages.create(**ask("good question"), extra_headers=CONVO)
    good = (tmp_path / "convo.yaml").read_bytes()

    with serving(tmp_path, Mode.ALL, scripted(401)) as s, sdk(s) as c:
        for _ in range(2):
            with pytest.raises(anthropic.AuthenticationError):
                c.messages.create(**ask("good question"), extra_headers=CONVO)
    with (
        serving(tmp_path, Mode.ALL, scripted(403)) as s,
        sdk(s) as c,
        pytest.raises(anthropic.PermissionDeniedError),
    ):
        c.messages.create(**ask("good question"), extra_headers=CONVO)

    assert (tmp_path / "convo.yaml").read_bytes() == good
    assert names(tmp_path) == ["convo.yaml"]
    refused = tapedeck_log.matching("refused the key")
    assert len(refused) == 2  # once per server run, not once per request
    assert "--upstream-api-key-env" in refused[0]
    assert "ANTHROPIC_API_KEY" in refused[0]


def test_all_mode_never_replaces_a_good_answer_with_an_error(tmp_path: Path) -> None:
    """Even with record_errors, an error is written only if a good answer follows it."""
    with serving(tmp_path, Mode.ALL, scripted(200)) as s, sdk(s) as c:
        c.messages.create(**ask("good question"), extra_headers=CONVO)
    good = (tmp_path / "convo.yaml").read_bytes()

    errors = Settings(
        cassettes=tmp_path,
        port=0,
        mode=Mode.ALL,
        upstream="http://api.invalid",
        timing=Timing.parse("instant"),
        record_errors=True,
    )
    with (
        ServerThread(errors, transport=httpx.MockTransport(scripted(500))) as s,
        sdk(s) as c,
        pytest.raises(anthropic.InternalServerError),
    ):
        c.messages.create(**ask("good question"), extra_headers=CONVO)
    assert (tmp_path / "convo.yaml").read_bytes() == good

    with (
        ServerThread(errors, transport=httpx.MockTransport(scripted(500, 200))) as s,
        sdk(s, max_retries=1) as c,
    ):
        c.messages.create(**ask("good question"), extra_headers=CONVO)
    assert statuses(tmp_path / "convo.yaml") == [500, 200]


# --- 6. record modes make the cassette directory ------------------------------------------


def test_recording_into_a_directory_that_does_not_exist_yet(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    root = tmp_path / "new" / "cassettes"
    with proxy(make_server, root, "once", fake) as s, sdk(s) as c:
        c.messages.create(**ask("first ever"))

    assert [p.suffix for p in root.rglob("*.yaml")] == [".yaml"]


# --- 7. beta calls replay across SDK releases -----------------------------------------------


@pytest.mark.parametrize("recorded_query", ["?beta=true", ""])
def test_beta_true_takes_no_part_in_matching(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer, recorded_query: str
) -> None:
    body = ask("beta question")
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024", **CONVO}
    with proxy(make_server, tmp_path, "all", fake) as s, httpx.Client(base_url=s.base_url) as h:
        h.post(f"/v1/messages{recorded_query}", json=body, headers=headers).raise_for_status()

    with proxy(make_server, tmp_path, "none", GONE) as s:
        with sdk(s) as c:  # the current SDK sends no ?beta=true
            reply = c.beta.messages.create(**body, betas=["tools-2024"], extra_headers=CONVO)
        assert reply.content[0].type == "text"
        with httpx.Client(base_url=s.base_url) as h:  # Python SDK 1.x did
            other = h.post("/v1/messages?beta=true", json=body, headers=headers)
    assert other.status_code == 200, other.text
    assert json.loads(other.text)["content"][0]["text"] == "beta question"


# --- 8. a recording the upstream cut, asked for as JSON -----------------------------------


def test_a_cut_recording_asked_for_as_json_fails_like_a_broken_upstream(
    tmp_path: Path, fake: FakeUpstream, make_server: MakeServer
) -> None:
    with (
        proxy(make_server, tmp_path, "all", fake, record_errors=True) as s,
        sdk(s) as c,
        raises_like(CUT),
        c.messages.stream(**ask("drop after a few words"), extra_headers=CONVO) as stream,
    ):
        stream.until_done()
    assert load(tmp_path / "convo.yaml")["interactions"][0]["response"]["end"] == "disconnect"

    with proxy(make_server, tmp_path, "none", GONE) as s, sdk(s) as c:
        with pytest.raises(anthropic.APIConnectionError):
            c.messages.create(**ask("drop after a few words"), extra_headers=CONVO)
        with httpx.Client(base_url=s.base_url) as h, pytest.raises(httpx.RemoteProtocolError):
            h.post("/v1/messages", json=ask("drop after a few words"), headers=CONVO)
