"""``tapedeck lint``, run as the real console script: one crafted cassette per rule."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

TAPEDECK = str(Path(sys.executable).parent / "tapedeck")

# Each event is one flow mapping on its own line, so event i is on line FIRST_EVENT + i.
HEAD = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body: {{model: m, max_tokens: 10, messages: [{{role: user, content: Hi}}]}}
    response:
      status: 200
      headers: {headers}
      events:
"""
FIRST_EVENT = 11

MS = (
    "{event: message_start, at_ms: 0, data: {type: message_start, message: {id: msg_1, "
    "type: message, role: assistant, model: m, content: [], stop_reason: null, "
    "stop_sequence: null, usage: {input_tokens: 1, output_tokens: 1}}}}"
)
PING = "{event: ping, at_ms: 0, data: {type: ping}}"
MD = (
    "{event: message_delta, at_ms: 0, data: {type: message_delta, delta: {stop_reason: "
    "end_turn, stop_sequence: null}, usage: {output_tokens: 2}}}"
)
STOP = "{event: message_stop, at_ms: 0, data: {type: message_stop}}"
ERROR = (
    "{event: error, at_ms: 0, data: {type: error, error: {type: overloaded_error, "
    "message: Overloaded}}}"
)


def start(index: int, block: str = 'type: text, text: ""') -> str:
    return (
        f"{{event: content_block_start, at_ms: 0, data: {{type: content_block_start, "
        f"index: {index}, content_block: {{{block}}}}}}}"
    )


def delta(index: int, body: str = 'type: text_delta, text: "Hi"') -> str:
    return (
        f"{{event: content_block_delta, at_ms: 0, data: {{type: content_block_delta, "
        f"index: {index}, delta: {{{body}}}}}}}"
    )


def stop(index: int) -> str:
    return (
        f"{{event: content_block_stop, at_ms: 0, data: {{type: content_block_stop, "
        f"index: {index}}}}}"
    )


GOOD = [MS, start(0), PING, delta(0), stop(0), MD, STOP]
TOOL = "type: tool_use, id: toolu_1, name: f, input: {}"


def cassette(
    tmp_path: Path,
    events: list[str],
    tail: str = "",
    headers: str = "{content-type: text/event-stream}",
) -> Path:
    text = HEAD.format(headers=headers) + "".join(f"        - {e}\n" for e in events) + tail
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def lint(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAPEDECK, "lint", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )


def assert_problems(path: Path, *expected: tuple[int, str]) -> None:
    result = lint(path)
    assert result.stdout.splitlines() == [f"{path}:{line}: {msg}" for line, msg in expected]
    assert result.returncode == 1
    assert f"{len(expected)} problem(s) in 1 of 1 file(s)" in result.stderr


def ev(i: int) -> str:
    return f"interactions[0].response.events[{i}]"


def test_shipped_cassettes_are_clean() -> None:
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "tapedeck lint: 7 cassette file(s), no problems\n"
    assert result.stderr == ""


def test_files_and_directories(tmp_path: Path) -> None:
    good = cassette(tmp_path, GOOD)
    result = lint(good, ROOT / "cassettes" / "streaming")
    assert result.returncode == 0, result.stdout
    assert result.stdout == "tapedeck lint: 5 cassette file(s), no problems\n"


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = lint(tmp_path / "nope")
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr


def test_schema_error_from_the_loader(tmp_path: Path) -> None:
    path = cassette(tmp_path, GOOD, tail="      delay: 5\n")
    assert_problems(
        path,
        (
            18,
            "interactions[0].response: unknown field 'delay' (expected one of: binary, "
            "body, end, end_at_ms, events, headers, status, text, time_to_headers_ms)",
        ),
    )


def test_version(tmp_path: Path) -> None:
    path = cassette(tmp_path, GOOD)
    path.write_text(path.read_text().replace("version: 1", "version: 2"))
    assert_problems(
        path, (1, "version: unsupported cassette version 2: this tapedeck reads version 1")
    )


def test_time_order_from_the_loader(tmp_path: Path) -> None:
    late = "{event: ping, at_ms: 9, data: {type: ping}}"
    path = cassette(tmp_path, [MS, late, start(0), delta(0), stop(0), MD, STOP])
    assert_problems(
        path,
        (
            13,
            f"{ev(2)}.at_ms: events must be in time order: 0 ms is before the previous "
            "event's 9 ms",
        ),
    )


#: What lint says of the findings that make ``serve`` refuse the file (the same words).
BEFORE_START = (
    "before message_start (an SDK builds the message from message_start: it fails on this "
    "event or drops it); put message_start first"
)
SECOND_START = (
    "second message_start (a stream holds one message: the TypeScript SDK throws 'Unexpected "
    "event order'); remove it, or give the second message an interaction of its own"
)


def not_started(name: str, index: int) -> str:
    return (
        f"{name} for block {index} before its content_block_start (an SDK assembling the "
        "message fails here: the Python SDK raises IndexError); move block "
        f"{index}'s content_block_start before it"
    )


def test_message_start_first(tmp_path: Path) -> None:
    path = cassette(tmp_path, [PING, start(0), MS, delta(0), stop(0), MD, STOP])
    assert_problems(path, (12, f"{ev(1)}: content_block_start {BEFORE_START}"))


def test_second_message_start(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), delta(0), MS, stop(0), MD, STOP])
    assert_problems(path, (14, f"{ev(3)}: {SECOND_START}"))


def test_delta_before_block_start(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, delta(0), start(0), stop(0), MD, STOP])
    assert_problems(path, (12, f"{ev(1)}: {not_started('content_block_delta', 0)}"))


def test_stop_before_block_start(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), stop(0), stop(1), MD, STOP])
    assert_problems(path, (14, f"{ev(3)}: {not_started('content_block_stop', 1)}"))


def test_misspelt_event_name_at_its_own_line(tmp_path: Path) -> None:
    """Reported at the misspelt event, and read on as meant: the block it stops is not
    reported open at the message_delta below it."""
    typo = stop(0).replace("event: content_block_stop", "event: content_block_stopp")
    path = cassette(tmp_path, [MS, start(0), delta(0), typo, MD, STOP])
    assert_problems(
        path,
        (
            14,
            f"{ev(3)}.event: unknown event name 'content_block_stopp'; did you mean "
            "'content_block_stop'? (the SDKs skip events they do not know, so this one would "
            "be lost)",
        ),
    )


@pytest.mark.parametrize(
    ("name", "meant"),
    [("Message_Stop", "message_stop"), ("pign", "ping"), ("content-block-delta", None)],
)
def test_misspellings_one_edit_away_or_by_case(
    tmp_path: Path, name: str, meant: str | None
) -> None:
    events = [MS, start(0), delta(0), stop(0), MD, STOP]
    events.insert(4, f"{{event: {name}, at_ms: 0, data: {{type: x}}}}")
    result = lint(cassette(tmp_path, events))
    meant = meant or name.replace("-", "_")
    assert f"unknown event name {name!r}; did you mean {meant!r}?" in result.stdout


def test_block_stopped_twice(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), delta(0), stop(0), stop(0), MD, STOP])
    assert_problems(path, (15, f"{ev(4)}: content_block_stop for block 0 stopped twice"))


def test_delta_after_stop(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), stop(0), delta(0), MD, STOP])
    assert_problems(path, (14, f"{ev(3)}: content_block_delta for block 0 after its stop"))


def test_block_index_order(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(1), delta(1), stop(1), MD, STOP])
    assert_problems(
        path,
        (
            12,
            f"{ev(1)}: content_block_start for block 1, expected 0 (an SDK puts each started "
            "block at the next position, so this block's events would reach another block or "
            "none: IndexError); number the blocks 0, 1, 2, ... in the order they start",
        ),
    )


def test_block_started_twice(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), start(0), stop(0), MD, STOP])
    assert_problems(
        path,
        (
            13,
            f"{ev(2)}: content_block_start for block 0, which already started (an SDK would "
            "add a second block and shift the later ones); remove one of them",
        ),
    )


@pytest.mark.parametrize(
    ("block", "body", "problem"),
    [
        (TOOL, 'type: text_delta, text: "x"', "text_delta for block 0, a tool_use block"),
        ('type: text, text: ""', 'type: input_json_delta, partial_json: ""', "input_json_delta"),
        ('type: text, text: ""', "type: thinking_delta, thinking: x", "thinking_delta"),
        ('type: text, text: ""', "type: signature_delta, signature: x", "signature_delta"),
        (
            'type: thinking, thinking: "", signature: ""',
            "type: citations_delta, citation: {type: char_location}",
            "citations_delta for block 0, a thinking block",
        ),
    ],
)
def test_delta_type_matches_block_type(tmp_path: Path, block: str, body: str, problem: str) -> None:
    path = cassette(tmp_path, [MS, start(0, block), delta(0, body), stop(0), MD, STOP])
    if not problem.endswith("block"):
        problem += " for block 0, a text block"
    assert_problems(path, (13, f"{ev(2)}: {problem}"))


def test_matching_deltas_are_clean(tmp_path: Path) -> None:
    thinking = 'type: thinking, thinking: "", signature: ""'
    events = [
        MS,
        start(0, thinking),
        delta(0, "type: thinking_delta, thinking: hmm"),
        delta(0, "type: signature_delta, signature: abc"),
        stop(0),
        start(1, TOOL),
        delta(1, 'type: input_json_delta, partial_json: "{}"'),
        stop(1),
        start(2, "type: server_tool_use, id: srvtoolu_1, name: web_search, input: {}"),
        delta(2, 'type: input_json_delta, partial_json: "{}"'),
        stop(2),
        start(3),
        delta(3, "type: citations_delta, citation: {type: char_location}"),
        delta(3, "type: some_future_delta, x: 1"),
        stop(3),
        "{event: some_future_event, at_ms: 0, data: {type: whatever}}",
        MD,
        STOP,
    ]
    result = lint(cassette(tmp_path, events))
    assert result.returncode == 0, result.stdout


def test_message_delta_after_blocks(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), delta(0), MD, stop(0), STOP])
    assert_problems(
        path,
        (14, f"{ev(3)}: message_delta while block 0 is not stopped"),
        (15, f"{ev(4)}: content_block_stop for block 0 stopped twice"),
    )


def test_block_start_after_message_delta(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, MD, start(0), stop(0), STOP])
    assert_problems(path, (13, f"{ev(2)}: content_block_start for block 0 after message_delta"))


def test_message_stop_needs_message_delta(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), stop(0), STOP])
    assert_problems(path, (14, f"{ev(3)}: message_stop without a message_delta before it"))


def test_message_stop_last(tmp_path: Path) -> None:
    path = cassette(tmp_path, [*GOOD, MD])
    assert_problems(path, (18, f"{ev(7)}: message_delta after message_stop"))


def test_ping_anywhere(tmp_path: Path) -> None:
    events = [PING, MS, PING, start(0), PING, delta(0), PING, stop(0), PING, MD, PING, STOP, PING]
    assert lint(cassette(tmp_path, events)).returncode == 0


def test_stream_must_end_with_message_stop(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), delta(0)])
    assert_problems(
        path,
        (
            13,
            "interactions[0].response.events: the stream ends without message_stop (expected "
            "message_stop last, an error event, or 'end: disconnect')",
        ),
    )


def test_disconnect_may_end_anywhere(tmp_path: Path) -> None:
    path = cassette(tmp_path, [MS, start(0), delta(0)], tail="      end: disconnect\n")
    result = lint(path)
    assert result.returncode == 0, result.stdout


def test_error_event_ends_the_stream(tmp_path: Path) -> None:
    assert lint(cassette(tmp_path, [MS, start(0), delta(0), ERROR])).returncode == 0
    path = cassette(tmp_path, [MS, start(0), delta(0), ERROR, stop(0)])
    assert_problems(
        path,
        (
            15,
            f"{ev(4)}: content_block_stop after the error event (an error event ends the stream)",
        ),
    )


def test_data_type_must_match_event_name(tmp_path: Path) -> None:
    wrong = "{event: content_block_stop, at_ms: 0, data: {type: ping, index: 0}}"
    path = cassette(tmp_path, [MS, start(0), delta(0), wrong, stop(0), MD, STOP])
    assert_problems(
        path,
        (
            14,
            f"{ev(3)}: data.type is 'ping', expected 'content_block_stop' for a "
            "content_block_stop event",
        ),
    )


def test_error_data_type_is_error(tmp_path: Path) -> None:
    wrong = "{event: error, at_ms: 0, data: {type: overloaded_error}}"
    path = cassette(tmp_path, [MS, wrong])
    assert_problems(
        path,
        (12, f"{ev(1)}: data.type is 'overloaded_error', expected 'error' for a error event"),
        (
            12,
            "interactions[0].response.events: the stream ends without message_stop (expected "
            "message_stop last, an error event, or 'end: disconnect')",
        ),
    )


def test_known_event_data_must_be_a_mapping(tmp_path: Path) -> None:
    raw = "{event: ping, at_ms: 0, data: 'not json'}"
    path = cassette(tmp_path, [MS, raw, start(0), delta(0), stop(0), MD, STOP])
    assert_problems(path, (12, f"{ev(1)}: data of a ping event must be a mapping, got str"))


def test_key_shaped_string(tmp_path: Path) -> None:
    leak = '{event: ping, at_ms: 0, data: {type: ping, note: "sk-ant-api03-abcdefgh"}}'
    path = cassette(tmp_path, [MS, leak, start(0), delta(0), stop(0), MD, STOP])
    assert_problems(
        path,
        (12, "key-shaped string 'sk-ant-api…': remove it or use 'sk-ant-REDACTED'"),
    )
    redacted = leak.replace("sk-ant-api03-abcdefgh", "sk-ant-REDACTED")
    assert lint(cassette(tmp_path, [MS, redacted, *GOOD[1:]])).returncode == 0


@pytest.mark.parametrize(
    "header", ["x-api-key", "Authorization", "cookie", "set-cookie", "anthropic-organization-id"]
)
def test_secret_response_header(tmp_path: Path, header: str) -> None:
    path = cassette(tmp_path, GOOD, headers=f"{{content-type: text/event-stream, {header}: x}}")
    assert_problems(
        path,
        (9, f"interactions[0].response.headers: secret header {header!r}; remove it"),
    )


def test_secret_request_header(tmp_path: Path) -> None:
    path = cassette(tmp_path, GOOD)
    line = "      path: /v1/messages\n"
    text = path.read_text().replace(line, line + "      headers:\n        x-api-key: x\n")
    path.write_text(text)
    assert_problems(
        path, (7, "interactions[0].request.headers: secret header 'x-api-key'; remove it")
    )


def test_every_problem_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = cassette(tmp_path / "a", [MS, start(0), delta(0)])
    cassette(tmp_path / "b", GOOD)
    result = lint(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{bad}:13: ")
    assert "1 problem(s) in 1 of 2 file(s)" in result.stderr


def test_max_age_flags_interactions_recorded_too_long_ago(tmp_path: Path) -> None:
    old = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=120)).replace(
        microsecond=0
    )
    fresh = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    stamp = old.isoformat().replace("+00:00", "Z")
    text = HEAD.format(headers="{content-type: text/event-stream}") + "".join(
        f"        - {e}\n" for e in GOOD
    )
    text = text.replace("  - request:", f"  - recorded_at: {stamp}\n    request:", 1)
    text += text.split("interactions:\n", 1)[1].replace(stamp, fresh.isoformat())
    path = tmp_path / "aged.yaml"
    path.write_text(text, encoding="utf-8")

    assert lint(path).returncode == 0  # no age limit asked for
    result = subprocess.run(
        [TAPEDECK, "lint", "--max-age", "90d", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:3: interactions[0]: recorded 120 days ago ({stamp}), longer ago than "
        "--max-age 90d; record it again"
    ]
    loose = subprocess.run(
        [TAPEDECK, "lint", "--max-age", "26w", str(path)], capture_output=True, text=True
    )
    assert loose.returncode == 0, loose.stdout
    bad = subprocess.run(
        [TAPEDECK, "lint", "--max-age", "soon", str(path)], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "expected an age such as 90d, 12w or 36h, got 'soon'" in bad.stderr
