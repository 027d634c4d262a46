"""Reading cassette YAML that is wrong: errors that say file, line and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from cassette_samples import FILE, JSON, STREAM, edit, write
from tapedeck.cassette.load import load_cassette, parse_cassette
from tapedeck.cassette.model import FORMAT_VERSION
from tapedeck.errors import CassetteError


def error_of(text: str) -> CassetteError:
    with pytest.raises(CassetteError) as info:
        parse_cassette(text, FILE, "sample")
    return info.value


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
            [
                "unknown field 'comment'",
                "expected one of: description, interactions, normalize, version",
            ],
            id="unknown-top-level-field",
        ),
        pytest.param(
            edit(STREAM, "      path: /v1/messages\n", "      path: /v1/messages\n      url: /x\n"),
            7,
            "interactions[0].request: ",
            [
                "unknown field 'url'",
                "expected one of: body, client, headers, match, method, path, query",
            ],
            id="unknown-request-field",
        ),
        pytest.param(
            edit(STREAM, "      status: 200\n", "      status: 200\n      delay_ms: 5\n"),
            13,
            "interactions[0].response: ",
            [
                "unknown field 'delay_ms'",
                "expected one of: binary, body, end, end_at_ms, events, headers, status, text, "
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
            ["one of 'body', 'text', 'binary' or 'events'", "not both 'body' and 'events'"],
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


# --- values YAML reads but cannot construct, and characters it does not allow ------------

_DIGITS_4301 = "9" * 4301


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        pytest.param(
            "at_ms: 12.5",
            "at_ms: !!float x",
            21,
            "interactions[0].response.events[1].at_ms: expected a number of milliseconds >= 0, "
            "got !!float 'x' (could not convert string to float: 'x')",
            id="float-tag-on-text",
        ),
        pytest.param(
            "status: 200",
            "status: !!int 1.5",
            12,
            "interactions[0].response.status: expected an HTTP status code, got !!int '1.5' "
            "(invalid literal for int() with base 10: '1.5')",
            id="int-tag-on-a-fraction",
        ),
        pytest.param(
            "time_to_headers_ms: 40",
            f"time_to_headers_ms: {_DIGITS_4301}",
            15,
            "interactions[0].response.time_to_headers_ms: expected a number of milliseconds "
            ">= 0, got !!int '99999999999999999999…(4301 chars)' (an integer with more digits "
            "than can be read (4300 at most))",
            id="integer-over-4300-digits",
        ),
        pytest.param(
            "time_to_headers_ms: 40",
            f"time_to_headers_ms: {'9' * 400}",
            15,
            "interactions[0].response.time_to_headers_ms: expected a finite number of "
            "milliseconds, got a number of 400 digits",
            id="integer-too-large-for-a-float",
        ),
        pytest.param(
            "at_ms: 12.5",
            "at_ms: 1.0e+400",
            21,
            "interactions[0].response.events[1].at_ms: expected a finite number of "
            "milliseconds, got inf",
            id="float-overflowing-to-infinity",
        ),
        pytest.param(
            "at_ms: 12.5",
            "at_ms: .nan",
            21,
            "interactions[0].response.events[1].at_ms: expected a finite number of "
            "milliseconds, got nan",
            id="not-a-number",
        ),
        pytest.param(
            "at_ms: 12.5",
            "at_ms: 1e400",
            21,
            "interactions[0].response.events[1].at_ms: expected a number of milliseconds >= 0, "
            "got '1e400'",
            id="yaml-1.1-reads-1e400-as-text",
        ),
        pytest.param(
            "data: {type: message_stop}",
            "data: {type: message_stop, n: !!bool maybe}",
            22,
            "interactions[0].response.events[1].data: cannot read the value !!bool 'maybe' "
            "(not a value of this type)",
            id="bad-value-deep-in-data",
        ),
        pytest.param(
            "content: Hi}]",
            "content: !!timestamp x}]",
            10,
            "interactions[0].request.body: cannot read the value !!timestamp 'x' "
            "(not a value of this type)",
            id="bad-value-in-the-request-body",
        ),
        pytest.param(
            "Request-Id: req_1",
            "Request-Id: !!float x",
            14,
            "interactions[0].response.headers: header 'Request-Id': expected a string value, "
            "got !!float 'x' (could not convert string to float: 'x')",
            id="bad-header-value",
        ),
        pytest.param(
            "Request-Id: req_1",
            "Request-\U0001f600: req_1",
            14,
            "interactions[0].response.headers: header 'Request-\U0001f600': a header name is "
            "ASCII letters, digits and !#$%&'*+-.^_`|~ only",
            id="header-name-not-a-token",
        ),
        pytest.param(
            "Request-Id: req_1",
            'Request-Id: "req\\r\\nSet-Cookie: x"',
            14,
            "interactions[0].response.headers: header 'Request-Id': a value cannot hold line "
            "breaks or control characters",
            id="line-break-in-a-response-header",
        ),
        pytest.param(
            "      path: /v1/messages\n",
            "      path: /v1/messages\n      query: {limit: !!int x}\n",
            7,
            "interactions[0].request.query: parameter 'limit': expected text or a number, got "
            "!!int 'x' (invalid literal for int() with base 10: 'x')",
            id="bad-query-value",
        ),
        pytest.param(
            "      path: /v1/messages\n",
            "      path: /v1/messages\n      query: {q: {a: 1}}\n",
            7,
            "interactions[0].request.query: parameter 'q': expected text or a number, "
            "got a mapping",
            id="query-value-not-a-scalar",
        ),
        pytest.param(
            "description: a minimal stream",
            "description: a \x1b[31mred\x1b[0m stream",
            2,
            "invalid YAML: character U+001B is not allowed (control characters are not "
            'allowed); inside double quotes, write it as an escape such as "\\x1b"',
            id="raw-control-character",
        ),
        pytest.param(
            "content: Hi}]",
            "content: H\x00i}]",
            10,
            "invalid YAML: character U+0000 is not allowed (control characters are not "
            'allowed); inside double quotes, write it as an escape such as "\\x00"',
            id="raw-nul",
        ),
    ],
)
def test_unreadable_values_are_cassette_errors_with_a_line(
    old: str, new: str, line: int, message: str
) -> None:
    error = error_of(edit(STREAM, old, new))

    assert (error.line, error.message) == (line, message)
    assert str(error) == f"{FILE}:{line}: {message}"
