"""Reading cassette YAML: the model it produces, and errors that say file, line and what."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapedeck.cassette.library import CassetteLibrary
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.cassette.model import (
    FORMAT_VERSION,
    RecordedEvent,
    RecordedRequest,
    RecordedResponse,
    StreamEnd,
)
from tapedeck.errors import CassetteError, LibraryError
from tapedeck.source.cassette import render

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
FILE = "tapes/sample.yaml"

# A minimal streamed cassette; the line numbers below are the ones errors must name.
STREAM = """\
version: 1
description: a minimal stream
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: claude-sonnet-4-5
        max_tokens: 16
        messages: [{role: user, content: Hi}]
    response:
      status: 200
      headers:
        Request-Id: req_1
      time_to_headers_ms: 40
      events:
        - event: message_start
          at_ms: 0
          data: {type: message_start}
        - event: message_stop
          at_ms: 12.5
          data: {type: message_stop}
"""
#   line  4: "  - request:"          (interactions[0])
#   line  5: "      method: POST"
#   line  6: "      path: /v1/messages"
#   line 11: "    response:"
#   line 12: "      status: 200"
#   line 16: "      events:"
#   line 17: "        - event: message_start" (events[0])
#   line 18: "          at_ms: 0"
#   line 20: "        - event: message_stop"  (events[1])
#   line 21: "          at_ms: 12.5"

# A minimal JSON-body cassette.
JSON = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
    response:
      status: 529
      body: {type: error}
"""
#   line 3: "  - request:", line 6: "    response:", line 7: "      status: 529"


def parts(response: RecordedResponse) -> tuple[bytes, ...]:
    """Each event's wire bytes (or the one body), as the cassette source renders them."""
    return render(response, ()).parts


def payload(response: RecordedResponse) -> bytes:
    """The whole body as it goes on the wire."""
    return b"".join(parts(response))


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the single occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def error_of(text: str) -> CassetteError:
    with pytest.raises(CassetteError) as info:
        parse_cassette(text, FILE, "sample")
    return info.value


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


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


# --- errors: file, line, field and what was expected ------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "prefix", "expected"),
    [
        pytest.param(
            edit(STREAM, "messages: [{role: user, content: Hi}]", "messages: [{role: user"),
            11,
            "invalid YAML: ",
            ["did not find expected ',' or '}'"],
            id="bad-yaml-syntax",
        ),
        pytest.param(
            edit(
                STREAM, "      path: /v1/messages\n", "      path: /v1/messages\n      path: /x\n"
            ),
            7,
            "invalid YAML: ",
            ["found duplicate key 'path'"],
            id="duplicate-key",
        ),
        pytest.param(
            edit(STREAM, "version: 1\n", ""),
            1,
            "",
            ["missing field 'version'", "'version: 1'"],
            id="missing-version",
        ),
        pytest.param(
            edit(STREAM, "version: 1\n", "version: 2\n"),
            1,
            "",
            ["unsupported cassette version 2", "reads version 1"],
            id="wrong-version",
        ),
        pytest.param(
            "version: 1\ndescription: x\n",
            1,
            "",
            ["missing field 'interactions'", "list of request/response pairs"],
            id="missing-interactions",
        ),
        pytest.param(
            "version: 1\n\ninteractions: []\n",
            3,
            "",
            ["expected at least one interaction"],
            id="empty-interactions",
        ),
        pytest.param(
            "version: 1\ninteractions: {a: 1}\n",
            2,
            "interactions: ",
            ["expected a list of request/response pairs, got a mapping"],
            id="interactions-not-a-list",
        ),
        pytest.param(
            "version: 1\ninteractions:\n\n  - response:\n      status: 200\n",
            4,
            "interactions[0]: ",
            ["missing field 'request'"],
            id="interaction-missing-request",
        ),
        pytest.param(
            edit(JSON, "    response:\n      status: 529\n      body: {type: error}\n", ""),
            3,
            "interactions[0]: ",
            ["missing field 'response'"],
            id="interaction-missing-response",
        ),
        pytest.param(
            STREAM + "comment: x\n",
            23,
            "",
            ["unknown field 'comment'", "expected one of: description, interactions, version"],
            id="unknown-top-level-field",
        ),
        pytest.param(
            edit(STREAM, "      path: /v1/messages\n", "      path: /v1/messages\n      url: /x\n"),
            7,
            "interactions[0].request: ",
            ["unknown field 'url'", "expected one of: body, headers, match, method, path, query"],
            id="unknown-request-field",
        ),
        pytest.param(
            edit(STREAM, "      status: 200\n", "      status: 200\n      delay_ms: 5\n"),
            13,
            "interactions[0].response: ",
            [
                "unknown field 'delay_ms'",
                "expected one of: body, end, end_at_ms, events, headers, status, text, "
                "time_to_headers_ms",
            ],
            id="unknown-response-field",
        ),
        pytest.param(
            edit(STREAM, "          at_ms: 12.5\n", "          at_ms: 12.5\n          delay: 1\n"),
            22,
            "interactions[0].response.events[1]: ",
            ["unknown field 'delay'", "expected one of: at_ms, data, event"],
            id="unknown-event-field",
        ),
        pytest.param(
            edit(STREAM, "status: 200", "status: ok"),
            12,
            "interactions[0].response.status: ",
            ["expected an HTTP status code", "got 'ok'"],
            id="status-string",
        ),
        pytest.param(
            edit(STREAM, "status: 200", 'status: "200"'),
            12,
            "interactions[0].response.status: ",
            ["expected an HTTP status code", "got '200'"],
            id="status-quoted-number",
        ),
        pytest.param(
            edit(STREAM, "status: 200", "status: 700"),
            12,
            "interactions[0].response.status: ",
            ["100 to 599", "got 700"],
            id="status-700",
        ),
        pytest.param(
            edit(STREAM, "method: POST", "method: FETCH"),
            5,
            "interactions[0].request.method: ",
            ["unknown HTTP method 'FETCH'"],
            id="bad-method",
        ),
        pytest.param(
            edit(STREAM, "path: /v1/messages", "path: v1/messages"),
            6,
            "interactions[0].request.path: ",
            ["expected a path starting with '/'", "got 'v1/messages'"],
            id="path-without-slash",
        ),
        pytest.param(
            edit(STREAM, "          data: {type: message_stop}\n", ""),
            20,
            "interactions[0].response.events[1]: ",
            ["missing field 'data'"],
            id="event-missing-data",
        ),
        pytest.param(
            edit(STREAM, "          at_ms: 12.5\n", ""),
            20,
            "interactions[0].response.events[1]: ",
            ["missing field 'at_ms'", "milliseconds"],
            id="event-missing-at_ms",
        ),
        pytest.param(
            edit(STREAM, "        - event: message_stop\n          at_ms", "        - at_ms"),
            20,
            "interactions[0].response.events[1]: ",
            ["missing field 'event'", "SSE event name"],
            id="event-missing-event",
        ),
        pytest.param(
            edit(STREAM, "at_ms: 0\n", "at_ms: 20\n"),
            21,
            "interactions[0].response.events[1].at_ms: ",
            ["events must be in time order", "12.5 ms is before the previous event's 20 ms"],
            id="at_ms-going-backwards",
        ),
        pytest.param(
            edit(STREAM, "at_ms: 0\n", "at_ms: -3\n"),
            18,
            "interactions[0].response.events[0].at_ms: ",
            ["expected a number >= 0, got -3"],
            id="negative-at_ms",
        ),
        pytest.param(
            edit(STREAM, "at_ms: 12.5", "at_ms: soon"),
            21,
            "interactions[0].response.events[1].at_ms: ",
            ["expected a number of milliseconds >= 0, got 'soon'"],
            id="at_ms-not-a-number",
        ),
        pytest.param(
            edit(STREAM, "      events:\n", "      body: {a: 1}\n      events:\n"),
            17,
            "interactions[0].response: ",
            ["one of 'body', 'text' or 'events'", "not both 'body' and 'events'"],
            id="body-and-events",
        ),
        pytest.param(
            edit(JSON, "      body: {type: error}\n", "      body: {}\n      text: x\n"),
            9,
            "interactions[0].response: ",
            ["not both 'body' and 'text'"],
            id="body-and-text",
        ),
        pytest.param(
            edit(STREAM, "      events:\n", "      end: weird\n      events:\n"),
            16,
            "interactions[0].response.end: ",
            ["expected 'complete' or 'disconnect', got 'weird'"],
            id="end-weird",
        ),
        pytest.param(
            JSON + "      end: disconnect\n",
            9,
            "interactions[0].response.end: ",
            ["'end' only applies to a response with 'events'"],
            id="end-on-json-response",
        ),
        pytest.param(
            JSON + "      end_at_ms: 5\n",
            9,
            "interactions[0].response.end_at_ms: ",
            ["'end_at_ms' only applies to a response with 'events'"],
            id="end_at_ms-on-json-response",
        ),
        pytest.param(
            edit(STREAM, "time_to_headers_ms: 40", "time_to_headers_ms: -40"),
            15,
            "interactions[0].response.time_to_headers_ms: ",
            ["expected a number >= 0, got -40"],
            id="negative-time_to_headers",
        ),
        pytest.param(
            edit(STREAM, "        - event: message_stop\n", '        - event: ""\n'),
            20,
            "interactions[0].response.events[1].event: ",
            ["one-line, non-empty event name"],
            id="empty-event-name",
        ),
        pytest.param(
            edit(STREAM, "version: 1\n", "version: '1'\n"),
            1,
            "version: ",
            ["expected 'version: 1' at the top, got '1'"],
            id="version-a-string",
        ),
        pytest.param(
            "- version: 1\n",
            1,
            "",
            ["expected a mapping, got a list"],
            id="top-level-list",
        ),
        pytest.param(
            "",
            1,
            "",
            ["empty file", "'version: 1'", "'interactions:'"],
            id="empty-file",
        ),
        pytest.param(
            "# only a comment\n\n",
            1,
            "",
            ["empty file"],
            id="comments-only",
        ),
    ],
)
def test_errors_name_file_line_field_and_expectation(
    text: str, line: int, prefix: str, expected: list[str]
) -> None:
    error = error_of(text)

    assert error.file == FILE
    assert error.line == line
    assert str(error).startswith(f"{FILE}:{line}: {prefix}"), str(error)
    for part in expected:
        assert part in error.message, (part, error.message)
    assert str(error) == f"{FILE}:{line}: {error.message}"


def test_wrong_version_message_in_full() -> None:
    error = error_of(edit(STREAM, "version: 1\n", "\nversion: 2\n"))

    assert FORMAT_VERSION == 1
    assert str(error) == (
        f"{FILE}:2: version: unsupported cassette version 2: this tapedeck reads version 1"
    )


def test_duplicate_key_deep_inside_is_reported_at_the_second_key() -> None:
    text = edit(STREAM, "          data: {type: message_start}", "          data: {a: 1, a: 2}")

    error = error_of(text)

    assert error.line == 19
    assert error.message == ("invalid YAML: found duplicate key 'a' (while constructing a mapping)")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("!!binary aGk=", id="binary"),
        pytest.param("!!set {a, b}", id="set"),
    ],
)
def test_a_yaml_value_json_cannot_carry_is_a_cassette_error(value: str) -> None:
    """A value YAML can express but JSON cannot: a CassetteError naming the line.

    Today ``json.dumps`` raises a bare ``TypeError`` at load time, which the CLI shows
    as a traceback instead of ``file:line: ...``.
    """
    text = edit(JSON, "      body: {type: error}\n", f"      body: {{x: {value}}}\n")

    error = error_of(text)

    assert error.file == FILE
    assert error.line == 8
    assert str(error).startswith(f"{FILE}:8: ")


def test_a_list_used_as_a_mapping_key_is_a_cassette_error() -> None:
    """Today the YAML loader raises a bare ``TypeError: unhashable type: 'list'``."""
    text = edit(JSON, "      body: {type: error}\n", "      body: {[a, b]: 1}\n")

    error = error_of(text)

    assert error.file == FILE
    assert error.line == 8
    assert str(error).startswith(f"{FILE}:8: ")


def test_non_utf8_file_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "latin1.yaml", "version: 1\n# café\ninteractions: []\n".encode("latin-1")
    )

    with pytest.raises(CassetteError) as info:
        load_cassette(path, "latin1", "cassettes/latin1.yaml")

    error = info.value
    assert error.file == "cassettes/latin1.yaml"
    assert "not UTF-8" in error.message
    assert error.line == 2  # the line holding the byte 0xe9
    assert str(error).startswith("cassettes/latin1.yaml:2: not UTF-8 text")


def test_empty_file_on_disk(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.yaml", b"")

    with pytest.raises(CassetteError) as info:
        load_cassette(path, "empty")

    assert str(info.value) == (f"{path}:1: empty file (expected 'version: 1' and 'interactions:')")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CassetteError) as info:
        load_cassette(tmp_path / "missing.yaml", "missing")

    assert str(info.value) == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"


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
