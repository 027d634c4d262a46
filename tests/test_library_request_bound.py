"""``library_request_max_bytes``: the requests that cassettes evicted past
``library_max_bytes`` keep are bounded too. Past the bound those evicted first keep only
digests of their requests' keys; through a real server (the SDK as the client, a bound of
one byte so every evicted cassette is stripped at once) they still match and replay as
recorded, a thread continued from one still matches, ``/_tapedeck/unused`` still knows what
they answered, a miss within a named one is explained from its file, and a miss across the
directory says how many interactions it did not compare. The pure parts (the key digest,
the order requests are dropped in) get a table below."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import running, sdk
from fake_upstream import FakeUpstream, ask
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette
from tapedeck.cassette.matching import LONG_KEY, index_key
from tapedeck.cassette.resident import Residency
from tapedeck.config import Mode
from tapedeck.server.runner import ServerThread

ANTHROPIC = {"anthropic-version": "2023-06-01"}
#: A question's padding: its request's key is longer than LONG_KEY, so indexed by digest.
PADDING = " and more" * 2_000
#: Every cassette is larger than this: each recording evicts the one before.
HELD = 2_000
SETTINGS: dict[str, Any] = {
    "index_cache": "off",
    "library_max_bytes": HELD,
    "library_request_max_bytes": 1,
}


def _library(server: ServerThread) -> CassetteLibrary:
    library: CassetteLibrary = server.server.config.app.handler.library
    return library


def _request_bodies(library: CassetteLibrary, name: str) -> list[Any]:
    return [e.interaction.request.body for e in library.entries(name)]


def _record(root: Path, fake: FakeUpstream, asked: list[tuple[str, str]]) -> None:
    with (
        running(root, mode=Mode.NEW_EPISODES, upstream=fake.base_url, **SETTINGS) as server,
        sdk(server) as client,
    ):
        for name, text in asked:
            client.messages.create(
                **ask(text + PADDING), extra_headers={"x-tapedeck-cassette": name}
            )


@pytest.mark.one_process
def test_stripped_cassettes_still_match_and_replay_as_recorded(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    asked = [("one", "first answer"), ("two", "other answer"), ("three", "third answer")]
    with (
        running(root, mode=Mode.NEW_EPISODES, upstream=fake.base_url, **SETTINGS) as server,
        sdk(server) as client,
    ):
        recorded = [
            client.messages.create(
                **ask(text + PADDING), extra_headers={"x-tapedeck-cassette": name}
            )
            for name, text in asked
        ]
        library = _library(server)
        stripped_before = [_request_bodies(library, n) for n in ("one", "two")]
        calls = fake.count
        # Naming no cassette: matched by the digests of the stripped ones' keys.
        replayed = [client.messages.create(**ask(text + PADDING)) for _, text in asked]
        stripped_after = [_request_bodies(library, n) for n in ("one", "two", "three")]
    assert stripped_before == [[None], [None]]  # evicted, then stripped of their requests
    assert fake.count == calls  # every replay came from a cassette
    assert [r.content[0].text for r in replayed] == [r.content[0].text for r in recorded]
    assert [r.id for r in replayed] == [r.id for r in recorded]
    # Each replay read its file again; the one used last is held whole.
    assert stripped_after[:2] == [[None], [None]]
    assert stripped_after[2][0]["messages"][0]["content"].startswith("third answer")


def test_a_stripped_cassette_replays_from_a_new_server_after_recording(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    asked = [("suite/a", "first answer"), ("suite/b", "other answer")]
    _record(root, fake, asked)
    with running(root, **SETTINGS) as server, sdk(server) as client:
        for _ in range(2):  # the second round: every cassette evicted and stripped once
            answers = [client.messages.create(**ask(text + PADDING)) for _, text in asked]
            assert [a.content[0].text.split()[:2] for a in answers] == [
                ["first", "answer"],
                ["other", "answer"],
            ]


def test_a_miss_across_the_directory_says_what_it_did_not_compare(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    _record(root, fake, [("one", "first answer"), ("two", "other answer")])
    with (
        running(root, **SETTINGS) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for text in ("first answer", "other answer"):  # one is evicted and stripped
            assert client.post("/v1/messages", json=ask(text + PADDING), headers=ANTHROPIC)
        missed = client.post("/v1/messages", json=ask("nothing like it"), headers=ANTHROPIC)
        named = client.post(
            "/v1/messages",
            json=ask("first answer, changed" + PADDING),
            headers={**ANTHROPIC, "x-tapedeck-cassette": "one"},
        )
    assert missed.status_code == 404
    message = missed.json()["error"]["message"]
    assert "closest is two" in message
    assert "1 interaction(s) not compared" in message
    assert "library_request_max_bytes" in message
    # Within a named cassette its file is read again: the difference is the real one.
    assert named.status_code == 404
    said = named.json()["error"]["message"]
    assert "closest is one" in said
    assert "not compared" not in said
    assert 'messages[0].content at char 12: "first answer, changed' in said


def test_unused_still_knows_what_stripped_cassettes_answered(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    _record(root, fake, [("one", "first answer"), ("one", "second answer"), ("two", "x y")])
    with (
        running(root, **SETTINGS) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for text in ("first answer", "x y"):  # one is stripped after it answered
            assert client.post("/v1/messages", json=ask(text + PADDING), headers=ANTHROPIC)
        unused = client.get("/_tapedeck/unused").json()
    assert unused["cassettes"] == []
    assert [(i["cassette"], i["index"]) for i in unused["interactions"]] == [("one", 1)]
    assert unused["interactions"][0]["where"].endswith("one.yaml:" + str(_line(root, 1)))


def _line(root: Path, index: int) -> int:
    path = root / "one.yaml"
    return load_cassette(path, "one", str(path)).interactions[index].line


@pytest.mark.one_process
def test_a_thread_continued_from_a_stripped_cassette_still_matches(tmp_path: Path) -> None:
    root = tmp_path / "cassettes"
    root.mkdir()
    first = ask("alpha" + PADDING)
    answer = {
        "id": "msg_stripped_alpha",
        "type": "message",
        "role": "assistant",
        "model": first["model"],
        "content": [{"type": "text", "text": "alpha says hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    then = {"role": "user", "content": "and then?"}
    continued = {
        **first,
        "messages": [then],
        "thread": {"type": "continue", "previous_message_id": answer["id"]},
    }
    follow = {**answer, "id": "msg_stripped_follow", "content": [{"type": "text", "text": "no"}]}
    other = ask("beta" + PADDING)
    beta = {**answer, "id": "msg_stripped_beta"}
    cassettes = (("alpha", first, answer), ("beta", other, beta), ("follow", continued, follow))
    for name, body, reply in cassettes:
        interaction = {
            "request": {"method": "POST", "path": "/v1/messages", "body": body},
            "response": {"status": 200, "headers": {}, "body": reply},
        }
        (root / f"{name}.yaml").write_text(
            yaml.safe_dump({"version": 1, "interactions": [interaction]}, sort_keys=False)
        )
    said = {"role": "assistant", "content": answer["content"]}
    whole = {**first, "messages": [*first["messages"], said, then]}  # sent without threads
    with (
        running(root, **SETTINGS) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        assert client.post("/v1/messages", json=first, headers=ANTHROPIC).status_code == 200
        assert client.post("/v1/messages", json=other, headers=ANTHROPIC).status_code == 200
        stripped = _request_bodies(_library(server), "alpha")  # evicted by beta, then stripped
        continued_answer = client.post("/v1/messages", json=whole, headers=ANTHROPIC)
    assert stripped == [None]
    assert continued_answer.status_code == 200, continued_answer.text
    assert continued_answer.json()["id"] == "msg_stripped_follow"


@pytest.mark.parametrize(
    ("key", "digested"),
    [
        ("[]", False),
        ("x" * LONG_KEY, False),
        ("x" * (LONG_KEY + 1), True),
        ('["POST","/v1/messages",[],[],{"a":"' + "é" * LONG_KEY + '"}]', True),
        ("\ud800" * (LONG_KEY + 1), True),  # a lone surrogate from JSON still digests
    ],
)
def test_index_key_digests_only_long_keys(key: str, digested: bool) -> None:
    found = index_key(key)
    assert (found != key) is digested
    if digested:
        assert found.startswith("sha256:")
        assert len(found) == 71
        assert index_key(key) == found
        assert index_key(key[:-1] + "y") != found


@pytest.mark.parametrize(
    ("budget", "parked", "dropped"),
    [
        (100, [("a", 40), ("b", 40)], [[], []]),
        (100, [("a", 40), ("b", 40), ("c", 40)], [[], [], ["a"]]),
        (100, [("a", 150)], [["a"]]),  # larger than the bound: stripped at once
        (100, [("a", 60), ("a", 60), ("b", 60)], [[], [], ["a"]]),  # parked twice: once
        (1, [("a", 1), ("b", 1)], [[], ["a"]]),
    ],
)
def test_requests_are_dropped_evicted_first_first(
    budget: int, parked: list[tuple[str, int]], dropped: list[list[str]]
) -> None:
    residency = Residency(10**9, budget)
    assert [residency.park(name, size) for name, size in parked] == dropped
    assert residency.parked <= budget


def test_a_cassette_used_again_no_longer_counts_as_parked() -> None:
    residency = Residency(10**9, 100)
    assert residency.park("a", 60) == []
    residency.use("a", 500)  # read again and held whole: its requests count there
    assert residency.parked == 0
    assert residency.park("b", 60) == []


@pytest.mark.one_process
def test_recording_into_a_stripped_cassette_keeps_every_interaction(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    asked = [("one", "first answer"), ("two", "other answer"), ("one", "second answer")]
    with (
        running(root, mode=Mode.NEW_EPISODES, upstream=fake.base_url, **SETTINGS) as server,
        sdk(server) as client,
    ):
        for n, (name, text) in enumerate(asked):
            if n == 2:  # one was evicted and stripped by the recording into two
                stripped = _request_bodies(_library(server), "one")
            client.messages.create(
                **ask(text + PADDING), extra_headers={"x-tapedeck-cassette": name}
            )
        calls = fake.count
        replayed = [client.messages.create(**ask(text + PADDING)) for _, text in asked]
    recorded = yaml.safe_load((root / "one.yaml").read_text())
    assert stripped == [None]
    assert len(recorded["interactions"]) == 2
    assert fake.count == calls
    assert [r.content[0].text.split()[:2] for r in replayed] == [
        ["first", "answer"],
        ["other", "answer"],
        ["second", "answer"],
    ]
