"""``load: lazy``: start-up lists the cassette files; a request that names its cassette loads
just that file, one that names none loads them all (once, logged); a broken file is still
reported before anything is answered from it — a 500 naming file:line, every time."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import CASSETTES, LogLines, running
from fake_upstream import FakeUpstream, ask
from tapedeck.config import Mode
from tapedeck.errors import LibraryError

HELLO = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "stream": True,
    "messages": [{"role": "user", "content": "Hello"}],
}
ANTHROPIC = {"anthropic-version": "2023-06-01"}
SHIPPED = len(list(CASSETTES.rglob("*.yaml")))


def _library(tmp_path: Path, broken: bool) -> Path:
    root = tmp_path / "cassettes"
    shutil.copytree(CASSETTES, root, ignore=shutil.ignore_patterns(".*"))
    if broken:
        text = (CASSETTES / "streaming/hello.yaml").read_text()
        (root / "broken.yaml").write_text(text.replace("max_tokens: 256", "max_tokens: [256"))
    return root


def _named(name: str) -> dict[str, str]:
    return {**ANTHROPIC, "x-tapedeck-cassette": name}


def test_a_broken_file_stops_an_eager_start_but_not_a_lazy_one(
    tmp_path: Path, tapedeck_log: LogLines
) -> None:
    root = _library(tmp_path, broken=True)
    with pytest.raises(LibraryError) as caught, running(root, index_cache="off"):
        pass
    assert [e.file.rsplit("/", 1)[-1] for e in caught.value.errors] == ["broken.yaml"]
    with (
        running(root, index_cache="off", load="lazy") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        health = client.get("/_tapedeck/health").json()
        named = client.post("/v1/messages", json=HELLO, headers=_named("streaming/hello"))
        quiet = list(tapedeck_log.lines())
        first = client.post("/v1/messages", json=HELLO, headers=_named("broken"))
        again = client.post("/v1/messages", json=HELLO, headers=_named("broken"))
        anywhere = client.post("/v1/messages", json=HELLO, headers=ANTHROPIC)
        catalog = client.get("/_tapedeck/cassettes")
    assert health["cassettes"] == SHIPPED + 1
    assert named.status_code == 200
    assert "message_stop" in named.text
    # Only the named file was read: nothing was said about the broken one, nor a full load.
    assert not any("broken.yaml" in line or "loaded" in line for line in quiet)
    for answer in (first, again, anywhere, catalog):  # never answered from the library while broken
        assert answer.status_code == 500
        assert "broken.yaml:" in answer.json()["error"]["message"]
    assert any("broken.yaml:" in line for line in tapedeck_log.lines())


def test_a_request_naming_no_cassette_loads_the_whole_directory_once(
    tmp_path: Path, tapedeck_log: LogLines
) -> None:
    root = _library(tmp_path, broken=False)
    cache = tmp_path / "cache"
    with (
        running(root, index_cache=cache, load="lazy") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        assert not any(cache.glob("*"))  # nothing read or written at start-up
        first = client.post("/v1/messages", json=HELLO, headers=ANTHROPIC)
        second = client.post("/v1/messages", json=HELLO, headers=ANTHROPIC)
        listed = client.get("/_tapedeck/cassettes").json()
    assert first.status_code == second.status_code == 200
    loads = [line for line in tapedeck_log.lines() if "cassette(s) in" in line]
    assert len(loads) == 1
    assert f"loaded {SHIPPED} cassette(s)" in loads[0]
    assert len(listed["cassettes"]) == SHIPPED
    assert any(cache.glob("*"))  # the whole load wrote the index cache, as an eager start does


def test_the_catalog_lists_every_file_of_a_lazy_library(tmp_path: Path) -> None:
    root = _library(tmp_path, broken=False)
    with (
        running(root, index_cache="off", load="lazy") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        listed = client.get("/_tapedeck/cassettes").json()
        one = client.get("/_tapedeck/cassettes/streaming/hello")
    names = {c["name"] for c in listed["cassettes"]}
    assert "streaming/hello" in names
    assert len(names) == SHIPPED
    assert one.status_code == 200


def test_new_episodes_adds_to_a_named_cassette_loaded_on_first_use(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    root = tmp_path / "cassettes"
    root.mkdir()
    (root / "broken.yaml").write_text("version: 1\ninteractions: [\n")  # named by nobody
    case = {**ANTHROPIC, "x-tapedeck-cassette": "suite/case"}
    settings = {"index_cache": "off", "load": "lazy", "upstream": fake.base_url}
    for asked in (["a plain answer"], ["a plain answer", "a second answer"]):
        with (
            running(root, mode=Mode.NEW_EPISODES, **settings) as server,
            httpx.Client(base_url=server.base_url, timeout=10) as client,
        ):
            for text in asked:
                assert client.post("/v1/messages", json=ask(text), headers=case).status_code == 200
    # The first run recorded one answer; the second replayed it from the cassette it loaded
    # on first use, recorded the new one and added it to the same file.
    assert fake.count == 2
    recorded = yaml.safe_load((root / "suite/case.yaml").read_text())
    assert len(recorded["interactions"]) == 2
