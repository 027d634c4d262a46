"""Per-test-id state kept for the most recent ``max_test_ids`` test ids: what is dropped,
what a returning test id is told, and that it holds over a real socket."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from conftest import LogLines, MakeServer, plain, plain_interaction
from tapedeck.per_test import PerTest
from tapedeck.shaping.fault_book import FaultBook
from tapedeck.shaping.faults import parse_faults
from tapedeck.source.sequences import Sequences


def filled(limit: int, *ids: str) -> PerTest[list[int]]:
    kept: PerTest[list[int]] = PerTest(limit)
    for test_id in ids:
        kept.setdefault(test_id, list).append(1)
    return kept


@pytest.mark.parametrize(
    ("ids", "kept", "dropped"),
    [
        (["a", "b"], ["a", "b"], []),
        (["a", "b", "c"], ["b", "c"], ["a"]),
        (["a", "b", "a", "c"], ["a", "c"], ["b"]),  # using a again makes it recent
        (["", "a", "b", "c"], ["", "b", "c"], ["a"]),  # "" (no test id) is never dropped
        (["a", "b", "c", "d", "e"], ["d", "e"], ["b", "c"]),  # the dropped are bounded too
    ],
)
def test_the_least_recently_used_test_ids_go_first(
    ids: list[str], kept: list[str], dropped: list[str]
) -> None:
    state = filled(2, *ids)
    assert [k for k, _ in state.items()] == kept
    for test_id in dropped:
        assert state.forgotten(test_id) > 0
    assert state.forgotten("a" if "a" in kept else "never-seen") == 0


def test_forgotten_is_told_once_and_not_after_a_pop_or_clear() -> None:
    state = filled(2, "a", "b", "c", "d")
    assert state.forgotten("a") == 1
    assert state.forgotten("a") == 0
    state.pop("b")  # b was dropped too: a deliberate pop (a reset) leaves nothing to tell
    assert state.forgotten("b") == 0
    state = filled(1, "a", "b")
    state.clear()
    assert (len(state), state.forgotten("a")) == (0, 0)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PerTest(0)


def test_sequences_of_a_returning_test_id_start_again_and_the_log_says_why(
    tapedeck_log: LogLines,
) -> None:
    sequences = Sequences(limit=2)
    for test_id in ("a", "b", "c"):
        assert sequences.peek(test_id, "cas", "key", 3) == 0
        sequences.advance(test_id, "cas", "key", 3)
    assert len(sequences) == 2
    assert sequences.peek("b", "cas", "key", 3) == 1  # kept
    assert sequences.peek("a", "cas", "key", 3) == 0  # forgotten: from the start
    [warning] = tapedeck_log.matching("test id 'a'")
    assert warning == (
        "tapedeck: test id 'a' was idle while 2 newer test ids were used: its 1 sequence "
        "position(s) were forgotten and its sequences start again from the first interaction "
        "(setting max_test_ids)"
    )
    assert [r.levelno for r in tapedeck_log.records] == [logging.WARNING]


def test_faults_set_for_a_returning_test_id_are_gone_and_the_log_says_why(
    tapedeck_log: LogLines,
) -> None:
    server_wide = parse_faults("ping:every=9")
    book = FaultBook(server_wide, limit=2)
    book.put(parse_faults("status:code=529"), "a")
    counted = parse_faults("truncate:times=5")
    for test_id in ("b", "c"):
        book.fire(counted, test_id, streaming=True)
    assert len(book) == 2
    assert book.active("a") == server_wide
    assert (
        "test id 'a' was idle while 2 newer test ids were used: the faults set for it"
        in (tapedeck_log.lines()[0])
    )
    assert book.count("c", counted[0]) == 1


def test_faults_without_times_or_p_keep_no_state_per_test_id() -> None:
    book = FaultBook(limit=2)
    for n in range(100):
        book.fire(parse_faults("ping:every=2; latency:ms=1"), f"t{n}", streaming=True)
    assert len(book) == 0


def test_over_a_socket_a_forgotten_test_id_replays_its_sequence_from_the_start(
    tmp_path: Path, make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    (tmp_path / "twice.yaml").write_text(
        "version: 1\ninteractions:\n"
        + plain_interaction("twice", "first")
        + plain_interaction("twice", "second")
    )

    def answer(http: httpx.Client, test_id: str) -> str:
        response = http.post("/v1/messages", json=plain("twice"), headers={
            "x-tapedeck-test-id": test_id})  # fmt: skip
        text: str = response.json()["content"][0]["text"]
        return text

    with (
        make_server(tmp_path, max_test_ids=2) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        tapedeck_log.only(server)
        assert [answer(http, "a"), answer(http, "b"), answer(http, "b")] == [
            "first",
            "first",
            "second",
        ]
        assert answer(http, "a") == "second"  # two ids so far: a is kept
        answer(http, "c")
        answer(http, "d")  # a is now the least recently used of three
        assert answer(http, "a") == "first"
        assert tapedeck_log.wait_for("test id 'a' was idle")
