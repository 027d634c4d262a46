"""Writing cassettes: dump → parse round trips, readable YAML, and atomic file writes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CASSETTES
from tapedeck.cassette import save as cassette_save
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.cassette.model import (
    Cassette,
    Interaction,
    RecordedEvent,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
)
from tapedeck.cassette.save import dump_cassette, sweep_temporary, write_atomic
from tapedeck.source.cassette import render

SHIPPED = sorted(CASSETTES.rglob("*.yaml"))


def shipped_name(path: Path) -> str:
    return path.relative_to(CASSETTES).with_suffix("").as_posix()


def round_trip(cassette: Cassette, comment: str = "") -> tuple[str, Cassette]:
    text = dump_cassette(cassette.interactions, cassette.description, comment)
    return text, parse_cassette(text, "dumped.yaml", cassette.name)


def assert_same(got: Cassette, want: Cassette) -> None:
    assert got.description == want.description
    assert len(got.interactions) == len(want.interactions)
    for g, w in zip(got.interactions, want.interactions, strict=True):
        assert g.request == w.request
        assert g.response == w.response
        # And the bytes that go on the wire.
        assert render(g.response, ()).parts == render(w.response, ()).parts


def test_every_shipped_cassette_is_found() -> None:
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("path", SHIPPED, ids=shipped_name)
def test_shipped_cassettes_round_trip(path: Path) -> None:
    original = load_cassette(path, shipped_name(path))
    text, again = round_trip(original)
    assert_same(again, original)
    # Dumping what was parsed gives the same text: the format is stable.
    assert round_trip(again)[0] == text
    # Plain YAML readers see the same document as the original file.
    assert (
        yaml.safe_load(text)["interactions"]
        == yaml.safe_load(path.read_text("utf-8"))["interactions"]
    )


@pytest.mark.parametrize("path", SHIPPED, ids=shipped_name)
def test_event_data_is_written_one_event_per_line(path: Path) -> None:
    original = load_cassette(path, shipped_name(path))
    text, _ = round_trip(original)
    lines = text.splitlines()
    events = [e for i in original.interactions for e in i.response.events or ()]
    data_lines = [line.strip() for line in lines if line.strip().startswith("data:")]
    assert len(data_lines) == len(events)
    for line, event in zip(data_lines, events, strict=True):
        if isinstance(event.data, dict):
            assert line.startswith("data: {"), line
            assert line.endswith("}"), line
            assert yaml.safe_load(line.removeprefix("data: ")) == event.data
    # Each event is exactly three lines: "- event:", "at_ms:", "data:".
    starts = [n for n, line in enumerate(lines) if line.lstrip().startswith("- event:")]
    for n in starts:
        assert lines[n + 1].strip().startswith("at_ms:")
        assert lines[n + 2].strip().startswith("data:")
        following = lines[n + 3].strip() if n + 3 < len(lines) else "- event:"
        assert following.startswith(("- event:", "end:", "end_at_ms:", "- request:")), following


def test_the_rest_is_block_style() -> None:
    original = load_cassette(CASSETTES / "streaming/hello.yaml", "streaming/hello")
    text, _ = round_trip(original)
    assert "interactions:\n- request:\n    method: POST\n    path: /v1/messages\n" in text
    assert "\n      messages:\n      - role: user\n        content: Hello\n" in text


TRICKY = [
    "",
    " leading space",
    "trailing space ",
    "yes",
    "no",
    "on",
    "off",
    "True",
    "null",
    "~",
    "2023-06-01",
    "12:30:00",
    "1_000",
    "0x1F",
    "0o17",
    "1e3",
    ".inf",
    "123",
    "-",
    "- item",
    "key: value",
    "a # not a comment",
    "{braces}",
    "[brackets]",
    "*star",
    "&anchor",
    "!tag",
    "%percent",
    "@at",
    "`tick",
    "#hash",
    "'single",
    '"double',
    "? question",
    "|pipe",
    ">fold",
    "=",
    "<<",
    "multi\nline\ntext\n",
    "crlf\r\nline",
    "tab\there",
    "\u2028line separator\u2029",
    "next\x85line",
    "nul\x00byte",
    "\ufeffbom",
    "é 😀 中文",
    "back\\slash",
    "x" * 70000,
]


def tricky_interaction(value: str) -> Interaction:
    data = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": value},
        value: [value, {value: None}],
    }
    return Interaction(
        RecordedRequest(
            "POST",
            "/v1/messages",
            query=(("q", value), ("q", "second")),
            headers=(("anthropic-beta", value),),
            body={"messages": [{"role": "user", "content": value}], "n": 1.5, "ok": True},
        ),
        RecordedResponse(
            200,
            # A response header goes on the wire: no line breaks or control characters.
            (("x-echo", value if value.isprintable() else "ok"), ("x-list", "a"), ("x-list", "b")),
            12.5,
            # In an order the SDKs can assemble: a library loading it refuses any other.
            events=(
                RecordedEvent("message_start", {"type": "message_start", "message": {}}, 0),
                RecordedEvent(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
                    0,
                ),
                RecordedEvent("content_block_delta", data, 0.5),
                RecordedEvent("raw", value, 3),
            ),
        ),
    )


@pytest.mark.parametrize("value", TRICKY, ids=lambda v: repr(v[:20]))
def test_tricky_strings_round_trip(value: str) -> None:
    interaction = tricky_interaction(value)
    text = dump_cassette([interaction], description=value, comment="a comment")
    parsed = parse_cassette(text, "tricky.yaml", "tricky")
    assert parsed.description == value
    [got] = parsed.interactions
    assert got.request == interaction.request
    assert got.response == interaction.response


def test_responses_of_every_kind_round_trip() -> None:
    request = RecordedRequest("GET", "/v1/models", query=(("limit", "2"),))
    responses = [
        RecordedResponse(200, (("content-type", "application/json"),), 3, body={"data": []}),
        RecordedResponse(200, (("content-type", "application/x-jsonl"),), 0, text='{"a":1}\n'),
        RecordedResponse(204, (), 0),
        RecordedResponse(
            529,
            (("retry-after", "1"), ("x-should-retry", "true")),
            41.3,
            body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
        RecordedResponse(
            200,
            (),
            7,
            events=(
                RecordedEvent("message_start", {"type": "message_start"}, 0),
                RecordedEvent("ping", {"type": "ping"}, 31.5),
            ),
            end=StreamEnd.DISCONNECT,
            end_at_ms=80.5,
        ),
        RecordedResponse(200, (), 0, events=(), end_at_ms=5),
    ]
    interactions = [Interaction(request, r) for r in responses]
    text = dump_cassette(interactions, "every kind")
    parsed = parse_cassette(text, "kinds.yaml", "kinds")
    assert [i.response for i in parsed.interactions] == responses
    assert [i.request for i in parsed.interactions] == [request] * len(responses)
    assert "end: disconnect" in text
    assert "end: complete" not in text


def test_comment_lines_lead_the_file() -> None:
    interaction = tricky_interaction("x")
    text = dump_cassette([interaction], comment="first line\n\nthird line")
    assert text.startswith("# first line\n#\n# third line\nversion: 1\n")


def test_times_are_rounded_to_a_tenth_of_a_millisecond() -> None:
    response = RecordedResponse(
        200,
        (),
        412.04999,
        events=(RecordedEvent("ping", {"type": "ping"}, 8.0),),
        end_at_ms=17.26,
    )
    text = dump_cassette([Interaction(RecordedRequest("POST", "/v1/messages"), response)])
    doc: dict[str, Any] = yaml.safe_load(text)
    dumped = doc["interactions"][0]["response"]
    assert dumped["time_to_headers_ms"] == 412
    assert isinstance(dumped["time_to_headers_ms"], int)
    assert dumped["events"][0]["at_ms"] == 8
    assert dumped["end_at_ms"] == 17.3


# --- write_atomic ---------------------------------------------------------------------------


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_atomic_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "c.yaml"
    write_atomic(path, "one: 1\n")
    assert path.read_text(encoding="utf-8") == "one: 1\n"
    write_atomic(path, "two: 2 é\n")
    assert path.read_text(encoding="utf-8") == "two: 2 é\n"
    assert listing(path.parent) == ["c.yaml"]


def test_write_atomic_goes_through_a_hidden_file_in_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves: list[tuple[str, str]] = []
    replace = os.replace

    def spy(src: str, dst: str) -> None:
        moves.append((str(src), str(dst)))
        assert Path(src).read_text(encoding="utf-8") == "whole text\n"  # complete before rename
        replace(src, dst)

    monkeypatch.setattr(cassette_save.os, "replace", spy)
    path = tmp_path / "c.yaml"
    write_atomic(path, "whole text\n")
    [(src, dst)] = moves
    assert Path(src).parent == tmp_path  # same file system: the rename is atomic
    assert Path(src).name.startswith(".")  # the loader skips it if a crash leaves it behind
    assert not Path(src).name.endswith((".yaml", ".yml"))
    assert Path(dst) == path


def fail(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["replace", "fsync", "write"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "c.yaml"
    write_atomic(path, "old: content\n")
    if where == "replace":
        monkeypatch.setattr(cassette_save.os, "replace", fail)
    elif where == "fsync":
        monkeypatch.setattr(cassette_save.os, "fsync", fail)
    else:
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.handle = real_fdopen(*args, **kwargs)

            def __enter__(self) -> HalfWriter:
                return self

            def __exit__(self, *exc: object) -> None:
                self.handle.close()

            def write(self, text: str) -> int:
                self.handle.write(text[: len(text) // 2])
                self.handle.flush()
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(cassette_save.os, "fdopen", HalfWriter)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, "new: content that is longer than the old one\n" * 100)
    assert path.read_text(encoding="utf-8") == "old: content\n"
    assert listing(tmp_path) == ["c.yaml"]


def test_a_failed_first_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cassette_save.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "new.yaml", "version: 1\n")
    assert listing(tmp_path) == []


def test_an_interrupt_mid_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    write_atomic(path, "old\n")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cassette_save.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert listing(tmp_path) == ["c.yaml"]


def test_a_left_over_temp_file_is_not_loaded_as_a_cassette(tmp_path: Path) -> None:
    text = dump_cassette([tricky_interaction("x")])
    write_atomic(tmp_path / "real.yaml", text)
    (tmp_path / ".real.yaml.abc123.tmp").write_text(text[: len(text) // 2], encoding="utf-8")
    library = CassetteLibrary.load(tmp_path)
    assert list(library.cassettes) == ["real"]


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def test_temp_files_of_writers_that_died_are_swept_and_no_others(tmp_path: Path) -> None:
    dead, alive = dead_pid(), os.getpid()
    (tmp_path / "sub").mkdir()
    left = [tmp_path / f".a.yaml.{dead}.x1y2z3.tmp", tmp_path / "sub" / f".b.yml.{dead}.q.tmp"]
    kept = [
        tmp_path / f".c.yaml.{alive}.k9.tmp",  # being written by a live process
        tmp_path / ".real.yaml.abc123.tmp",  # not a name tapedeck makes
        tmp_path / f"a.yaml.{dead}.x.tmp",  # not hidden
        tmp_path / "a.yaml",
    ]
    for path in left + kept:
        path.write_text("half a cassette", encoding="utf-8")
    assert sorted(sweep_temporary(tmp_path)) == sorted(left)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)


def test_the_temp_file_names_its_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    replace = cassette_save.os.replace

    def spy(source: str, target: Path) -> None:
        seen.append(Path(source).name)
        replace(source, target)

    monkeypatch.setattr(cassette_save.os, "replace", spy)
    write_atomic(tmp_path / "c.yaml", "x\n")
    [name] = seen
    assert name.startswith(f".c.yaml.{os.getpid()}.")
    assert name.endswith(".tmp")


def plain_write_mode(folder: Path) -> int:
    """The permissions a plain ``open(..., "w")`` gives a new file here (umask applied)."""
    probe = folder / "probe.txt"
    probe.write_text("x", encoding="utf-8")
    mode = stat.S_IMODE(probe.stat().st_mode)
    probe.unlink()
    return mode


def test_a_new_cassette_gets_the_permissions_of_any_new_file(tmp_path: Path) -> None:
    """mkstemp makes 0600 files: a cassette recorded so is unreadable to a container user."""
    expected = plain_write_mode(tmp_path)
    path = tmp_path / "c.yaml"
    write_atomic(path, "version: 1\n")
    assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(expected)


def test_rewriting_a_cassette_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o644)
    write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "new\n"
    assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(0o644)
