"""Reading cassette YAML: the model it produces, and a directory of cassettes as a library."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cassette_samples import FILE, JSON, STREAM, edit, write
from conftest import CASSETTES
from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.cassette.model import RecordedEvent, RecordedRequest, RecordedResponse, StreamEnd
from tapedeck.errors import LibraryError
from tapedeck.source.cassette import render


def parts(response: RecordedResponse) -> tuple[bytes, ...]:
    """Each event's wire bytes (or the one body), as the cassette source renders them."""
    return render(response, ()).parts


def payload(response: RecordedResponse) -> bytes:
    """The whole body as it goes on the wire."""
    return b"".join(parts(response))


# --- valid cassettes -------------------------------------------------------------------


def test_minimal_stream_parses_to_the_model() -> None:
    cassette = parse_cassette(STREAM, FILE, "streaming/sample")

    assert cassette.name == "streaming/sample"
    assert cassette.path == FILE
    assert cassette.description == "a minimal stream"
    assert len(cassette.interactions) == 1
    interaction = cassette.interactions[0]
    assert interaction.line == 4
    assert interaction.request == RecordedRequest(
        method="POST",
        path="/v1/messages",
        query=(),
        headers=(),
        body={
            "model": "claude-sonnet-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    response = interaction.response
    assert response.status == 200
    assert response.headers == (("request-id", "req_1"),)  # names lower-cased
    assert response.time_to_headers_ms == 40.0
    assert response.is_stream
    assert response.events == (
        RecordedEvent("message_start", {"type": "message_start"}, 0.0),
        RecordedEvent("message_stop", {"type": "message_stop"}, 12.5),
    )
    assert parts(response)[0] == (b'event: message_start\ndata: {"type":"message_start"}\n\n')
    assert payload(response) == (
        b'event: message_start\ndata: {"type":"message_start"}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert response.end is StreamEnd.COMPLETE
    assert response.end_at_ms is None
    assert response.body is None
    assert response.text is None


def test_stream_with_disconnect_end_and_raw_text_data() -> None:
    text = edit(
        STREAM,
        "      time_to_headers_ms: 40\n",
        "      time_to_headers_ms: 40\n      end: disconnect\n      end_at_ms: 30\n",
    )
    text = edit(text, "data: {type: message_stop}", 'data: "not json\\nsecond line"')

    response = parse_cassette(text, FILE, "s").interactions[0].response

    assert response.end is StreamEnd.DISCONNECT
    assert response.end_at_ms == 30.0
    assert response.events is not None
    assert response.events[1].data == "not json\nsecond line"
    assert parts(response)[1] == (b"event: message_stop\ndata: not json\ndata: second line\n\n")


def test_json_cassette_parses_to_the_model() -> None:
    text = """\
version: 1
interactions:
  - request:
      method: post
      path: /v1/messages/count_tokens
      query: {beta: true, tag: [a, b], n: 3}
      headers: {Anthropic-Beta: tools-2024}
      body: {model: m, messages: [{role: user, content: "Grüße"}]}
    response:
      status: 200
      headers:
        Set-Cookie: [a=1, b=2]
        x-n: 5
      body:
        input_tokens: 12
        note: "Grüße"
  - request:
      method: GET
      path: /v1/models
    response:
      status: 204
"""
    cassette = parse_cassette(text, FILE, "json")

    assert cassette.description == ""
    first, second = cassette.interactions
    assert first.line == 3
    assert second.line == 17
    assert first.request == RecordedRequest(
        method="POST",
        path="/v1/messages/count_tokens",
        query=(("beta", "true"), ("tag", "a"), ("tag", "b"), ("n", "3")),
        headers=(("anthropic-beta", "tools-2024"),),
        body={"model": "m", "messages": [{"role": "user", "content": "Grüße"}]},
    )
    response = first.response
    assert response.status == 200
    assert response.headers == (("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-n", "5"))
    assert response.body == {"input_tokens": 12, "note": "Grüße"}
    assert response.text is None
    assert response.events is None
    assert not response.is_stream
    assert payload(response) == '{"input_tokens":12,"note":"Grüße"}'.encode()
    assert response.time_to_headers_ms == 0.0

    empty = second.response
    assert second.request.body is None
    assert empty.status == 204
    assert empty.body is None
    assert empty.text is None
    assert payload(empty) == b""


def test_text_cassette_parses_to_the_model() -> None:
    text = edit(JSON, "      body: {type: error}\n", "      text: 'upstream said: no'\n")

    response = parse_cassette(text, FILE, "t").interactions[0].response

    assert response.status == 529
    assert response.text == "upstream said: no"
    assert response.body is None
    assert response.events is None
    assert payload(response) == b"upstream said: no"


def test_yaml_keeps_yes_no_on_and_dates_as_strings() -> None:
    text = edit(
        JSON,
        "      body: {type: error}\n",
        "      body:\n"
        "        a: no\n"
        "        b: yes\n"
        "        c: on\n"
        "        d: off\n"
        "        e: 2025-05-01\n"
        "        f: true\n"
        "        g: false\n"
        "        h: 2001-12-14t21:59:43.10-05:00\n"
        "        i: null\n"
        "        j: ~\n"
        "        k: 1.5\n",
    )

    response = parse_cassette(text, FILE, "y").interactions[0].response

    assert response.body == {
        "a": "no",
        "b": "yes",
        "c": "on",
        "d": "off",
        "e": "2025-05-01",
        "f": True,
        "g": False,
        "h": "2001-12-14t21:59:43.10-05:00",
        "i": None,
        "j": None,
        "k": 1.5,
    }
    assert response.body["f"] is True
    assert payload(response) == (
        b'{"a":"no","b":"yes","c":"on","d":"off","e":"2025-05-01","f":true,"g":false,'
        b'"h":"2001-12-14t21:59:43.10-05:00","i":null,"j":null,"k":1.5}'
    )


def test_load_cassette_reads_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "hello.yaml", STREAM)

    cassette = load_cassette(path, "hello")

    assert cassette.name == "hello"
    assert cassette.path == str(path)
    assert cassette.interactions[0].response.status == 200


# --- the library: one directory of cassettes ---------------------------------------------


def test_library_names_come_from_subfolders_and_both_suffixes(tmp_path: Path) -> None:
    write(tmp_path / "streaming" / "hello.yaml", STREAM)
    write(tmp_path / "errors" / "deep" / "529.yml", JSON)
    write(tmp_path / "top.yaml", JSON)

    library = CassetteLibrary.load(tmp_path)

    assert list(library.cassettes) == ["errors/deep/529", "streaming/hello", "top"]
    assert len(library) == 3
    hello = library.cassettes["streaming/hello"]
    assert hello.name == "streaming/hello"
    assert hello.path == str(tmp_path / "streaming" / "hello.yaml")
    assert library.cassettes["errors/deep/529"].path == str(tmp_path / "errors/deep/529.yml")


def test_library_skips_hidden_files_dirs_and_other_suffixes(tmp_path: Path) -> None:
    write(tmp_path / "kept.yaml", STREAM)
    broken = "version: [\n"
    write(tmp_path / ".hidden.yaml", broken)
    write(tmp_path / ".git" / "inside.yaml", broken)
    write(tmp_path / "sub" / ".cache" / "deeper.yml", broken)
    write(tmp_path / "sub" / ".swap.yml", broken)
    write(tmp_path / "README.md", broken)
    write(tmp_path / "notes.txt", broken)
    write(tmp_path / "data.json", broken)
    write(tmp_path / "kept.yaml.bak", broken)

    library = CassetteLibrary.load(tmp_path)

    assert list(library.cassettes) == ["kept"]


def test_library_refuses_two_files_with_the_same_name(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", STREAM)
    write(tmp_path / "a.yml", JSON)

    with pytest.raises(LibraryError) as info:
        CassetteLibrary.load(tmp_path)

    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'a.yml'}: cassette name 'a' is also used by {tmp_path / 'a.yaml'}; "
        "rename one of them"
    ]


def test_library_reports_every_broken_file(tmp_path: Path) -> None:
    write(tmp_path / "good.yaml", STREAM)
    write(tmp_path / "one.yaml", edit(STREAM, "status: 200", "status: ok"))
    write(tmp_path / "sub" / "two.yml", edit(STREAM, "version: 1\n", "version: 2\n"))
    write(tmp_path / "three.yaml", b"version: 1\ninteractions: [\n")

    with pytest.raises(LibraryError) as info:
        CassetteLibrary.load(tmp_path)

    errors = info.value.errors
    assert [(e.file, e.line) for e in errors] == [
        (str(tmp_path / "one.yaml"), 12),
        (str(tmp_path / "sub" / "two.yml"), 1),
        (str(tmp_path / "three.yaml"), 3),
    ]
    assert (
        errors[0].message
        == "interactions[0].response.status: expected an HTTP status code, got 'ok'"
    )
    assert errors[1].message.startswith("version: unsupported cassette version 2")
    assert errors[2].message.startswith("invalid YAML: ")
    assert str(info.value) == "\n".join(str(e) for e in errors)


def test_library_root_must_be_a_directory(tmp_path: Path) -> None:
    not_a_dir = write(tmp_path / "file.yaml", STREAM)

    for root in (not_a_dir, tmp_path / "missing"):
        with pytest.raises(LibraryError) as info:
            CassetteLibrary.load(root)
        (error,) = info.value.errors
        assert error.file == str(root)
        assert error.line == 0
        assert str(error) == (
            f"{root}: not a directory (expected the cassette directory, "
            "e.g. --cassettes ./cassettes)"
        )


def test_library_refuses_a_link_to_a_file_outside(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.yaml", STREAM)
    root = tmp_path / "tapes"
    root.mkdir()
    os.symlink(outside, root / "linked.yaml")

    with pytest.raises(LibraryError) as info:
        CassetteLibrary.load(root)

    (error,) = info.value.errors
    assert error.file == str(root / "linked.yaml")
    assert "outside the cassette directory" in error.message


def test_an_empty_directory_is_an_empty_library(tmp_path: Path) -> None:
    assert len(CassetteLibrary.load(tmp_path)) == 0


def test_the_shipped_cassettes_all_load() -> None:
    library = CassetteLibrary.load(CASSETTES)

    assert sorted(library.cassettes) == [
        "agents/weather-loop",
        "errors/overloaded-529",
        "errors/stream-overloaded",
        "streaming/extended-thinking",
        "streaming/hello",
        "streaming/tool-use",
        "streaming/web-search",
    ]
    for cassette in library.cassettes.values():
        assert cassette.description, cassette.name
        assert cassette.interactions, cassette.name
    hello = library.cassettes["streaming/hello"].interactions[0]
    assert hello.request.body["messages"] == [{"role": "user", "content": "Hello"}]
    assert hello.response.events is not None
    text = "".join(
        e.data["delta"]["text"] for e in hello.response.events if e.event == "content_block_delta"
    )
    assert text == "Hello!"
    overloaded = library.cassettes["errors/overloaded-529"].interactions[0].response
    assert overloaded.status == 529
    assert overloaded.body["error"]["type"] == "overloaded_error"
