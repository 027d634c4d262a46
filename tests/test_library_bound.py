"""``library_max_bytes``: past it the least recently used cassettes keep only their requests,
and are read again from their files — and checked again — when they next answer. Through a
real server, with a bound that holds one cassette at a time: an evicted cassette replays
byte for byte as before; one changed on disk since is served as it is now; one broken since
answers the 500 naming ``file:line``; recording into an evicted cassette keeps every
interaction its file had."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import agent_loop
from agent_loop import deck
from conftest import LogLines, running
from fake_upstream import FakeUpstream, ask
from reliability.cassettes import MODEL, message_events
from tapedeck.config import Mode

ANTHROPIC = {"anthropic-version": "2023-06-01"}
#: Every cassette below is larger: the library holds only the one used last.
BOUND = 20_000
PADDING = "lorem ipsum " * 3_000  # 36 kB


def _question(name: str, stream: bool = False) -> dict[str, Any]:
    body = ask(f"tell me about {name}")
    if stream:
        body["stream"] = True
    return body


def _message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_bound",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 9},
    }


def _write(root: Path, name: str, answer: str, stream: bool = False) -> Path:
    """A cassette (block-style YAML, so a stream's middle is read on first use) of about
    36 kB answering ``_question(name)``."""
    response: dict[str, Any] = {"status": 200, "headers": {"content-type": "application/json"}}
    if stream:
        response["headers"] = {"content-type": "text/event-stream"}
        response["events"] = message_events(
            [answer[i : i + 1000] for i in range(0, len(answer), 1000)], 0
        )
    else:
        response["body"] = _message(answer)
    interaction = {
        "request": {"method": "POST", "path": "/v1/messages", "body": _question(name, stream)},
        "response": response,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "interactions": [interaction]}, sort_keys=False))
    return path


def _library(tmp_path: Path) -> Path:
    root = tmp_path / "cassettes"
    root.mkdir()
    for name in ("alpha", "beta", "gamma"):
        _write(root, name, f"{name} says " + PADDING)
    _write(root, "delta", "delta streams " + PADDING, stream=True)
    return root


def _ask(client: httpx.Client, name: str, stream: bool = False) -> httpx.Response:
    return client.post("/v1/messages", json=_question(name, stream), headers=ANTHROPIC)


@pytest.mark.parametrize("load", ["eager", "lazy"])
def test_an_evicted_cassette_replays_byte_for_byte(tmp_path: Path, load: str) -> None:
    root = _library(tmp_path)
    with (
        running(root, index_cache="off", load=load, library_max_bytes=BOUND) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        first = {n: _ask(client, n, n == "delta").content for n in ("alpha", "delta", "beta")}
        # Each answer evicted the one before; each is read from its file again now.
        again = {n: _ask(client, n, n == "delta").content for n in ("alpha", "delta", "beta")}
        named = client.post(
            "/v1/messages",
            json=_question("alpha"),
            headers={**ANTHROPIC, "x-tapedeck-cassette": "alpha"},
        )
        _ask(client, "beta")  # alpha is evicted again: the web view reads its file
        listed = client.get("/_tapedeck/cassettes").json()["cassettes"]
        shown = client.get("/_tapedeck/cassettes/alpha")
    assert first == again
    assert b"alpha says lorem" in first["alpha"]
    assert b"delta streams" in first["delta"]
    assert b"message_stop" in first["delta"]
    assert named.content == first["alpha"]
    assert sorted(c["name"] for c in listed) == ["alpha", "beta", "delta", "gamma"]
    assert shown.status_code == 200
    assert "alpha says lorem" in shown.text


def test_a_cassette_changed_on_disk_after_its_eviction_is_read_again(tmp_path: Path) -> None:
    root = _library(tmp_path)
    with (
        running(root, index_cache="off", library_max_bytes=BOUND) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        _ask(client, "delta", stream=True)
        before = _ask(client, "alpha").json()
        _ask(client, "beta")  # delta and alpha are evicted
        _write(root, "alpha", "alpha was edited " + PADDING)
        _write(root, "delta", "delta was edited " + PADDING, stream=True)
        after = _ask(client, "alpha").json()
        streamed = _ask(client, "delta", stream=True)
    assert before["content"][0]["text"].startswith("alpha says")
    assert after["content"][0]["text"].startswith("alpha was edited")
    assert streamed.status_code == 200
    assert "delta was edited" in streamed.text


def test_a_cassette_broken_on_disk_after_its_eviction_answers_500_naming_file_and_line(
    tmp_path: Path,
) -> None:
    root = _library(tmp_path)
    with (
        running(root, index_cache="off", library_max_bytes=BOUND) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        assert _ask(client, "alpha").status_code == 200
        _ask(client, "beta")  # alpha is evicted
        path = root / "alpha.yaml"
        path.write_text(path.read_text().replace("max_tokens: 64", "max_tokens: [64"))
        broken = _ask(client, "alpha")
        again = _ask(client, "alpha")
        others = _ask(client, "gamma")
    for answer in (broken, again):
        assert answer.status_code == 500
        assert answer.json()["error"]["type"] == "api_error"
        assert "alpha.yaml:" in answer.json()["error"]["message"]
    assert others.status_code == 200  # the rest of the library is served


@pytest.mark.one_process
def test_recording_into_an_evicted_cassette_keeps_every_interaction(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    root.mkdir()
    settings = {"index_cache": "off", "upstream": fake.base_url, "library_max_bytes": 2_000}
    asked = [
        ("suite/one", "first answer"),
        ("suite/two", "other answer"),
        ("suite/one", "second answer"),
    ]
    with (
        running(root, mode=Mode.NEW_EPISODES, **settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for name, text in asked:
            headers = {**ANTHROPIC, "x-tapedeck-cassette": name}
            body = ask(text + " " + "padding " * 300)
            assert client.post("/v1/messages", json=body, headers=headers).status_code == 200
        # Evicted by the recording into suite/two, suite/one was read again to add to it.
        recorded = yaml.safe_load((root / "suite/one.yaml").read_text())
        upstream_calls = fake.count
        replayed = [
            client.post(
                "/v1/messages",
                json=ask(text + " " + "padding " * 300),
                headers={**ANTHROPIC, "x-tapedeck-cassette": name},
            )
            for name, text in asked
        ]
    assert len(recorded["interactions"]) == 2
    assert [r.status_code for r in replayed] == [200, 200, 200]
    assert fake.count == upstream_calls  # every replay came from a cassette
    assert [r.json()["content"][0]["text"].split()[:2] for r in replayed] == [
        ["first", "answer"],
        ["other", "answer"],
        ["second", "answer"],
    ]


def test_an_evicted_cassette_that_answered_is_not_reported_unused(tmp_path: Path) -> None:
    root = _library(tmp_path)
    with (
        running(root, index_cache="off", library_max_bytes=BOUND) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for name in ("alpha", "beta", "gamma"):  # each evicts the one before
            assert _ask(client, name).status_code == 200
        unused = client.get("/_tapedeck/unused").json()
    assert unused["cassettes"] == ["delta"]
    assert unused["interactions"] == []


@pytest.mark.one_process
def test_recording_into_an_evicted_cassette_broken_since_leaves_its_file(
    tmp_path: Path, fake: FakeUpstream, tapedeck_log: LogLines
) -> None:
    root = tmp_path / "cassettes"
    root.mkdir()
    settings = {"index_cache": "off", "upstream": fake.base_url, "library_max_bytes": 2_000}
    with (
        running(root, mode=Mode.NEW_EPISODES, **settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for name, text in (("one", "first answer"), ("two", "other answer")):
            headers = {**ANTHROPIC, "x-tapedeck-cassette": name}
            assert client.post("/v1/messages", json=ask(text), headers=headers).status_code == 200
        path = root / "one.yaml"
        broken = path.read_text().replace("max_tokens: 64", "max_tokens: [64")
        path.write_text(broken)
        headers = {**ANTHROPIC, "x-tapedeck-cassette": "one"}
        answer = client.post("/v1/messages", json=ask("third answer"), headers=headers)
    assert answer.status_code == 200  # the client keeps its answer
    assert path.read_text() == broken  # and the file is left as it was
    assert any(
        "not recorded into one" in line and "one.yaml:" in line for line in tapedeck_log.lines()
    )


def test_thinking_served_from_an_evicted_cassette_is_still_known(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    with deck(root, "new_episodes") as server, agent_loop.client_for(server) as client:
        agent_loop.hand_loop(client, thinking={"type": "enabled", "budget_tokens": 2048})
    _write(root, "filler", "filler says " + PADDING)
    doc = yaml.safe_load((root / f"{agent_loop.CASSETTE}.yaml").read_text())
    step = next(
        i["request"]["body"]
        for i in doc["interactions"]
        if i["request"]["body"].get("thinking") and len(i["request"]["body"]["messages"]) == 3
    )
    edited = copy.deepcopy(step)
    edited["messages"][1]["content"][0]["thinking"] += " (edited)"
    with (
        deck(root, "none", library_max_bytes=BOUND) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        assert client.post("/v1/messages", json=step, headers=ANTHROPIC).status_code == 200
        assert _ask(client, "filler").status_code == 200  # the loop's cassette is evicted
        replayed = client.post("/v1/messages", json=step, headers=ANTHROPIC)
        refused = client.post("/v1/messages", json=edited, headers=ANTHROPIC)
    assert replayed.status_code == 200, replayed.text
    assert refused.status_code == 400
    assert "cannot be modified" in refused.json()["error"]["message"]


def test_a_thread_continued_from_an_evicted_cassette_still_matches(tmp_path: Path) -> None:
    root = _library(tmp_path)
    first = _question("alpha")
    answer = _message("alpha says " + PADDING)
    answer["id"] = "msg_bound_alpha"
    (root / "alpha.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "interactions": [
                    {
                        "request": {"method": "POST", "path": "/v1/messages", "body": first},
                        "response": {"status": 200, "headers": {}, "body": answer},
                    }
                ],
            }
        )
    )
    then = {"role": "user", "content": "and then?"}
    continued = {**first, "thread": {"type": "continue", "previous_message_id": answer["id"]}}
    continued["messages"] = [then]
    _write(root, "follow", "then nothing " + PADDING)
    doc = yaml.safe_load((root / "follow.yaml").read_text())
    doc["interactions"][0]["request"]["body"] = continued
    (root / "follow.yaml").write_text(yaml.safe_dump(doc))
    # The whole conversation, as a client without threads sends it.
    said = {"role": "assistant", "content": answer["content"]}
    whole = {**first, "messages": [*first["messages"], said, then]}
    with (
        running(root, index_cache="off", load="lazy", library_max_bytes=BOUND) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        named = {**ANTHROPIC, "x-tapedeck-cassette": "alpha"}
        assert client.post("/v1/messages", json=first, headers=named).status_code == 200
        beta = {**ANTHROPIC, "x-tapedeck-cassette": "beta"}
        assert client.post("/v1/messages", json=_question("beta"), headers=beta).status_code == 200
        # alpha is evicted; naming no cassette loads the others, the continuation among them
        followed = client.post("/v1/messages", json=whole, headers=ANTHROPIC)
    assert followed.status_code == 200, followed.text
    assert "then nothing" in followed.text
