"""An eager start with a warm index cache: every file is checked before the server answers
(a changed one parsed, a broken one stopping the start), but the files the cache vouches
for — unchanged since they passed every check — are only told apart by the cache file's
first line; their cassettes are made when a request first names them, or all at once at
the first request naming none (:meth:`tapedeck.cassette.index.LibraryIndex.check`)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import conftest
from conftest import CASSETTES, LogLines, running, sdk
from tapedeck.cassette import files as files_module
from tapedeck.cassette import index as index_module
from tapedeck.cassette.index import LibraryIndex
from tapedeck.cassette.index_cache import FORMAT, IndexCache
from tapedeck.cassette.lazy_events import EventStore
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.matching import MatchRules
from tapedeck.errors import LibraryError

HELLO = {**conftest.HELLO, "stream": True}
ANTHROPIC = {"anthropic-version": "2023-06-01"}
SHIPPED = len(list(CASSETTES.rglob("*.yaml")))
#: The first step of the shipped agent loop, as the SDK's ``messages.stream`` takes it.
LOOP_STEP = {
    key: value
    for key, value in yaml.safe_load((CASSETTES / "agents/weather-loop.yaml").read_text())[
        "interactions"
    ][0]["request"]["body"].items()
    if key != "stream"
}


class Counted:
    """How often the start-up parsed a file, and read the cache's entries."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed: list[str] = []
        self.entries = 0
        parse, entries = index_module._parse, IndexCache.entries

        def counted_parse(file: str, name: str, display: str) -> Any:
            self.parsed.append(name)
            return parse(file, name, display)

        def counted_entries(cache: IndexCache) -> dict[str, Any]:
            self.entries += 1
            return entries(cache)

        monkeypatch.setattr(index_module, "_parse", counted_parse)
        monkeypatch.setattr(IndexCache, "entries", counted_entries)

    def reset(self) -> None:
        self.parsed.clear()
        self.entries = 0


def _library(tmp_path: Path, more: int = 0) -> tuple[Path, Path]:
    """The shipped cassettes and ``more`` of hello's, each asking something else."""
    root = tmp_path / "cassettes"
    shutil.copytree(CASSETTES, root, ignore=shutil.ignore_patterns(".*"))
    hello = (CASSETTES / "streaming/hello.yaml").read_text()
    (root / "more").mkdir()
    for i in range(more):
        asked = hello.replace('content: "Hello"', f'content: "Hello {i}"')
        (root / "more" / f"hello{i}.yaml").write_text(asked)
    return root, tmp_path / "cache"


def _cold_start(root: Path, cache: Path) -> Path:
    """Start and stop once, so that the cache knows every file; its path."""
    with running(root, index_cache=cache):
        pass
    (file,) = cache.glob("index-*.json")
    return file


def _change(path: Path, edit: Callable[[str], str]) -> None:
    path.write_text(edit(path.read_text()))
    stat = path.stat()  # a later mtime even on a coarse clock
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


def _named(name: str) -> dict[str, str]:
    return {**ANTHROPIC, "x-tapedeck-cassette": name}


def test_a_warm_start_reads_the_stamps_alone_and_makes_cassettes_when_first_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tapedeck_log: LogLines
) -> None:
    root, cache = _library(tmp_path)
    file = _cold_start(root, cache)
    head = json.loads(file.read_text().partition("\n")[0])
    assert head["format"] == FORMAT
    assert len(head["stamps"]) == SHIPPED
    counted = Counted(monkeypatch)
    with (
        running(root, index_cache=cache) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        at_start = (list(counted.parsed), counted.entries)
        health = client.get("/_tapedeck/health").json()
        named = client.post("/v1/messages", json=HELLO, headers=_named("streaming/hello"))
        after_named = (list(counted.parsed), counted.entries)
        anywhere = [client.post("/v1/messages", json=HELLO, headers=ANTHROPIC) for _ in range(2)]
        listed = client.get("/_tapedeck/cassettes").json()
    assert at_start == ([], 0)  # no file parsed, no entry read
    assert health["cassettes"] == SHIPPED
    assert named.status_code == 200
    assert "message_stop" in named.text
    assert after_named == (["streaming/hello"], 0)  # the named file alone
    assert [a.status_code for a in anywhere] == [200, 200]
    assert anywhere[0].text == named.text
    assert counted.entries == 1  # the rest made from the cache's entries, once
    assert counted.parsed == ["streaming/hello"]
    # Made as the start would have made them: nothing to say.
    assert not [line for line in tapedeck_log.lines() if "cassette(s) in" in line]
    assert len(listed["cassettes"]) == SHIPPED


def test_the_sdk_reads_a_warm_started_library_as_a_cold_started_one(tmp_path: Path) -> None:
    root, cache = _library(tmp_path)
    answers = []
    for _ in ("cold", "warm"):
        with running(root, index_cache=cache) as server, sdk(server) as client:
            with client.messages.stream(**conftest.HELLO) as stream:
                events = [event.type for event in stream]
                message = stream.get_final_message()
            named = {"x-tapedeck-cassette": "agents/weather-loop"}
            with client.messages.stream(**LOOP_STEP, extra_headers=named) as stream:
                step = stream.get_final_message()
        answers.append((events, message.model_dump(), step.model_dump()))
    assert answers[0] == answers[1]
    assert answers[0][1]["content"][0]["text"] == "Hello!"
    assert answers[0][2]["stop_reason"] == "tool_use"


def test_a_file_broken_since_the_last_start_still_stops_a_warm_start(tmp_path: Path) -> None:
    root, cache = _library(tmp_path)
    _cold_start(root, cache)
    _change(root / "streaming/hello.yaml", lambda t: t.replace("status: 200", "status: ok"))
    (root / "new.yaml").write_text("interactions: [")
    with pytest.raises(LibraryError) as caught, running(root, index_cache=cache):
        pass
    problems = sorted(str(e) for e in caught.value.errors)
    assert len(problems) == 2
    assert problems[0].startswith(str(root / "new.yaml") + ":")
    assert "hello.yaml:" in problems[1]
    assert "response.status" in problems[1]


def test_a_changed_file_is_parsed_at_start_and_cached_once_all_are_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = _library(tmp_path, more=20)
    file = _cold_start(root, cache)
    written = file.read_bytes()
    hello = root / "streaming/hello.yaml"
    _change(hello, lambda t: t.replace('text: "!"', 'text: " there!"'))
    counted = Counted(monkeypatch)
    with (
        running(root, index_cache=cache) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        at_start = list(counted.parsed)
        unchanged_cache = file.read_bytes() == written
        named = client.post("/v1/messages", json=HELLO, headers=_named("streaming/hello"))
        anywhere = client.post("/v1/messages", json=HELLO, headers=ANTHROPIC)
    assert at_start == ["streaming/hello"]
    # One file of many changed: parsing it again next time costs less than a rewrite.
    assert unchanged_cache
    assert '"text":" there!"' in named.text
    assert anywhere.text == named.text
    assert file.read_bytes() != written  # written when the whole directory was loaded
    counted.reset()
    with running(root, index_cache=cache):
        pass
    assert counted.parsed == []
    # A tenth of the files or more changed: written at start-up, none parsed next time.
    for i in range(3):
        _change(root / "more" / f"hello{i}.yaml", lambda t: t.replace('text: "!"', 'text: "?"'))
    counted.reset()
    written = file.read_bytes()
    with running(root, index_cache=cache):
        assert len(counted.parsed) == 3
        assert file.read_bytes() != written
    counted.reset()
    with running(root, index_cache=cache):
        pass
    assert counted.parsed == []


def test_a_cache_of_another_format_reads_as_empty(tmp_path: Path) -> None:
    root, cache = _library(tmp_path)
    file = _cold_start(root, cache)
    reader = IndexCache(cache, root)
    assert reader.path == file
    assert len(reader.stamps()) == len(reader.entries()) == SHIPPED
    entries = reader.entries()
    for stale in (
        json.dumps({"format": 4, "tapedeck": "x", "files": entries}),  # one line, older
        "{not json\n{}",
        "",
        json.dumps({"format": FORMAT, "tapedeck": "0.0.0", "stamps": {}}) + "\n{}",
    ):
        file.write_text(stale)
        assert reader.stamps() == {}
        assert reader.entries() == {}


def _index(root: Path, cache: Path) -> LibraryIndex:
    return LibraryIndex(root, cache, EventStore())


def test_the_library_says_once_when_every_listed_file_is_loaded(tmp_path: Path) -> None:
    root, cache = _library(tmp_path)
    cold = _index(root, cache)
    CassetteLibrary.load(root, index=cold, defer=True)
    cold.save(unless_few=True)
    library = CassetteLibrary.load(root, index=_index(root, cache), defer=True)
    calls: list[int] = []
    library.when_whole(lambda: calls.append(len(library)))
    rules = MatchRules()
    shape = rules.shape("POST", "/v1/messages", (), {}, HELLO)
    assert library.find(shape, "streaming/hello") is not None
    assert calls == []
    assert library.find(shape) is not None
    assert library.find(shape) is not None
    assert calls == [SHIPPED]


def test_without_defer_a_warm_load_makes_every_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = _library(tmp_path)
    _cold_start(root, cache)
    counted = Counted(monkeypatch)
    index = _index(root, cache)
    library = CassetteLibrary.load(root, index=index)  # as a parent of --workers loads
    assert counted.entries == 1
    assert counted.parsed == []
    assert index.parsed == 0
    assert len(library.cassettes) == SHIPPED


def _checked_out_again(root: Path) -> None:
    """Every file rewritten with the same bytes and a later modification time, as a fresh
    clone (and a cache directory restored by CI) has them."""
    for path in root.rglob("*.yaml"):
        path.write_bytes(path.read_bytes())
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_files_checked_out_again_are_known_by_their_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = _library(tmp_path, more=20)
    file = _cold_start(root, cache)
    before = json.loads(file.read_text().partition("\n")[0])["stamps"]
    _checked_out_again(root)
    # Same size, other bytes: that one is read again.
    jello = root / "more/hello1.yaml"
    jello.write_text(jello.read_text().replace('text: "!"', 'text: "?"'))
    counted = Counted(monkeypatch)
    digests: list[str] = []
    digest_of = files_module.digest_of

    def counted_digest(path: str) -> str | None:
        digests.append(path)
        return digest_of(path)

    monkeypatch.setattr(index_module, "digest_of", counted_digest)
    with (
        running(root, index_cache=cache) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        at_start = (list(counted.parsed), counted.entries, len(digests))
        asked = dict(HELLO, messages=[{"role": "user", "content": "Hello 1"}])
        changed = client.post("/v1/messages", json=asked, headers=ANTHROPIC)
    total = SHIPPED + 20
    assert at_start == (["more/hello1"], 0, total)  # every file hashed, one parsed
    assert '"text":"?"' in changed.text
    after = json.loads(file.read_text().partition("\n")[0])["stamps"]
    assert after.keys() == before.keys()
    assert all(after[k][2] != before[k][2] for k in after)  # the new stamps, kept
    assert all(after[k][3] == before[k][3] for k in after if k != "more/hello1.yaml")
    counted.reset()
    digests.clear()
    with running(root, index_cache=cache):
        pass
    assert (counted.parsed, digests) == ([], [])


def test_a_warm_load_without_defer_knows_files_by_their_bytes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = _library(tmp_path)
    _cold_start(root, cache)
    _checked_out_again(root)
    counted = Counted(monkeypatch)
    index = _index(root, cache)
    library = CassetteLibrary.load(root, index=index)
    assert counted.parsed == []
    assert len(library.cassettes) == SHIPPED
    events = library.cassettes["streaming/hello"].interactions[0].response.events
    assert events is not None
    assert len(list(events)) > 2  # read from the file: its stamp is the one now
