"""The library index: a serving library keeps index entries and reads events on first use;
the index cache makes the next start parse only what changed; a broken cassette is still
reported at start-up; a cassette changed on disk after start-up is said, not served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from conftest import CASSETTES, running
from tapedeck.cassette import index as index_module
from tapedeck.cassette import index_entry
from tapedeck.cassette.index import LibraryIndex
from tapedeck.cassette.lazy_events import EventStore, LazyEvents
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.config import Settings
from tapedeck.errors import ConfigError, LibraryError
from tapedeck.server.app import load_library

HELLO = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}


def library_copy(tmp_path: Path) -> Path:
    root = tmp_path / "cassettes"
    shutil.copytree(CASSETTES, root)
    return root


def load(
    root: Path, cache: Path, store: EventStore | None = None
) -> tuple[CassetteLibrary, LibraryIndex]:
    index = LibraryIndex(root, cache, store or EventStore())
    library = CassetteLibrary.load(root, index=index)
    index.save()
    return library, index


def test_a_warm_start_parses_nothing_and_serves_the_same(tmp_path: Path) -> None:
    root, cache = library_copy(tmp_path), tmp_path / "cache"
    eager = CassetteLibrary.load(root)
    _, first = load(root, cache)
    assert first.parsed == 7
    assert len(list(cache.glob("index-*.json"))) == 1
    warm, second = load(root, cache)
    assert second.parsed == 0
    for name, cassette in eager.cassettes.items():
        for want, got in zip(cassette.interactions, warm.cassettes[name].interactions, strict=True):
            assert got.request == want.request
            assert got.line == want.line
            assert got.response == want.response  # lazily read events compare equal
    hello = warm.cassettes["streaming/hello"].interactions[0].response.events
    assert isinstance(hello, LazyEvents)


def test_events_are_read_on_first_use_and_the_cache_is_bounded(tmp_path: Path) -> None:
    root = library_copy(tmp_path)
    store = EventStore(budget=20)
    library, _ = load(root, tmp_path / "cache", store)
    assert store.reads == 0
    hello = library.cassettes["streaming/hello"].interactions[0].response.events
    tool = library.cassettes["streaming/tool-use"].interactions[0].response.events
    assert hello is not None
    assert tool is not None
    assert len(hello) == 8
    assert hello[0].event == "message_start"
    assert store.reads == 0  # the count and the first event are in the index
    assert [e.event for e in hello][-1] == "message_stop"
    assert store.reads == 1
    list(hello)
    assert store.reads == 1
    list(tool)  # 30 events: over the budget of 20, so hello's go
    list(hello)
    assert store.reads == 3


def test_only_changed_files_are_parsed_again(tmp_path: Path) -> None:
    root, cache = library_copy(tmp_path), tmp_path / "cache"
    load(root, cache)
    hello = root / "streaming/hello.yaml"
    hello.write_text(hello.read_text().replace('text: "Hello"}', 'text: "Hi there"}'))
    library, index = load(root, cache)
    assert index.parsed == 1
    events = library.cassettes["streaming/hello"].interactions[0].response.events
    assert events is not None
    assert "Hi there" in json.dumps([e.data for e in events])


def test_a_broken_cassette_is_reported_at_start_up_even_after_a_good_start(
    tmp_path: Path,
) -> None:
    root, cache = library_copy(tmp_path), tmp_path / "cache"
    load(root, cache)
    hello = root / "streaming/hello.yaml"
    hello.write_text(hello.read_text().replace("status: 200", "status: ok"))
    with pytest.raises(LibraryError) as caught:
        load(root, cache)
    assert "response.status" in str(caught.value.errors[0])
    assert caught.value.errors[0].line > 0


def test_a_broken_or_foreign_cache_is_ignored(tmp_path: Path) -> None:
    root, cache = library_copy(tmp_path), tmp_path / "cache"
    load(root, cache)
    (cache_file,) = cache.glob("index-*.json")
    cache_file.write_text("{not json")
    _, index = load(root, cache)
    assert index.parsed == 7
    cache_file.write_text(json.dumps({"format": 999, "files": {}}))
    _, index = load(root, cache)
    assert index.parsed == 7


def test_many_files_are_parsed_in_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cassettes"
    hello = (CASSETTES / "streaming/hello.yaml").read_text()
    for i in range(8):
        (root / f"s{i}").mkdir(parents=True)
        (root / f"s{i}/case.yaml").write_text(hello.replace('"Hello"', f'"Hello {i}"'))
    monkeypatch.setattr(index_module, "PARALLEL_FROM", 2)
    monkeypatch.setattr(index_module.os, "cpu_count", lambda: 2)
    pools: list[int] = []
    real_pool = index_module.ProcessPoolExecutor

    def pool(workers: int, **kwargs: object) -> object:
        pools.append(workers)
        return real_pool(workers, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module, "ProcessPoolExecutor", pool)
    library, index = load(root, tmp_path / "cache")
    assert pools == [2]  # the files went to two worker processes
    assert index.parsed == 8
    assert len(library) == 8
    events = library.cassettes["s3/case"].interactions[0].response.events
    assert events is not None
    assert len(list(events)) == 8
    # A broken file is reported from the worker with its line, like any other.
    (root / "s5/case.yaml").write_text(hello.replace("status: 200", "status: ok"))
    with pytest.raises(LibraryError) as caught:
        load(root, tmp_path / "other-cache")
    assert caught.value.errors[0].file.endswith("s5/case.yaml")
    assert caught.value.errors[0].line > 0


def test_the_cache_never_goes_inside_the_cassettes(tmp_path: Path) -> None:
    root = library_copy(tmp_path)
    with pytest.raises(ConfigError, match="inside the cassette directory"):
        load_library(Settings(cassettes=root, index_cache=root / ".cache"))
    load_library(Settings(cassettes=root, index_cache="off"))
    assert not list(tmp_path.rglob("index-*.json"))
    load_library(Settings(cassettes=root, index_cache=tmp_path / "elsewhere"))
    assert len(list((tmp_path / "elsewhere").glob("index-*.json"))) == 1


def test_a_cassette_changed_after_start_up_is_said_not_served(tmp_path: Path) -> None:
    root = library_copy(tmp_path)
    with running(root, index_cache=tmp_path / "cache") as server:
        hello = root / "streaming/hello.yaml"
        hello.write_text(hello.read_text().replace('text: "Hello"}', 'text: "Changed"}'))
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            answer = client.post(
                "/v1/messages", json=HELLO, headers={"anthropic-version": "2023-06-01"}
            )
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["type"] == "api_error"
    assert "changed on disk since tapedeck loaded it; restart tapedeck" in error["message"]


def test_listing_the_library_reads_no_cassette_file(tmp_path: Path) -> None:
    """The web view's library list (durations, event counts, reply ids) comes from the index:
    opening it on a large library must not read every file."""
    root = library_copy(tmp_path)
    with running(root) as s:
        listed = httpx.get(s.base_url + "/_tapedeck/cassettes").json()
        lazy = [
            i.response.events
            for c in s.library.cassettes.values()
            for i in c.interactions
            if isinstance(i.response.events, LazyEvents)
        ]
        assert lazy
        assert lazy[0].store.reads == 0
    eager = CassetteLibrary.load(root)
    hello = next(c for c in listed["cassettes"] if c["name"] == "streaming/hello")
    want = eager.cassettes["streaming/hello"].interactions[0].response
    assert want.events is not None
    assert hello["duration_ms"] == want.time_to_headers_ms + (
        want.end_at_ms or want.events[-1].at_ms
    )


def _kept(cassette: object) -> object:
    """What a served cassette holds, its lazy streams by what they know without reading."""
    if isinstance(cassette, LazyEvents):
        c = cassette
        return ("lazy", c.file, c.stamp, c.interaction, c.length, c.ends, c.signatures, c.line)
    if isinstance(cassette, tuple | list):
        return [_kept(x) for x in cassette]
    fields = getattr(cassette, "__dataclass_fields__", None)
    if fields is None:
        return cassette
    return {name: _kept(getattr(cassette, name)) for name in fields}


@pytest.mark.parametrize("path", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.stem)
def test_a_parsed_cassette_is_served_as_its_cached_entry_would_be(path: Path) -> None:
    """Start-up serves a file it parsed straight from the parse: the same cassette the next
    start makes from the cache file's entry."""
    store = EventStore()
    parsed = index_module._parse(str(path), "n", "d.yaml")
    assert not isinstance(parsed, Exception)
    entry = index_entry.entry_of(*parsed)
    cached = json.loads(json.dumps(entry))
    served = index_entry.served(parsed[0], entry, "d.yaml", str(path), store)
    assert _kept(served) == _kept(index_entry.from_entry(cached, "d.yaml", str(path), store))


def test_the_garbage_collector_is_on_again_after_a_load_even_a_failing_one(
    tmp_path: Path,
) -> None:
    import gc

    root = library_copy(tmp_path)
    load(root, tmp_path / "cache")
    assert gc.isenabled()
    (root / "broken.yaml").write_text("version: 1\ninteractions: []\n")
    with pytest.raises(LibraryError):
        load(root, tmp_path / "cache")
    assert gc.isenabled()
