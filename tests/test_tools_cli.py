"""``tapedeck ls``, ``show`` and ``new``, run as the real console script."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from conftest import ROOT, running, sdk
from tapedeck.cassette.load import load_cassette
from tapedeck.cassette.message_stream import assemble
from tapedeck.errors import StreamError

TAPEDECK = str(Path(sys.executable).parent / "tapedeck")


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAPEDECK, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=60,
    )


# --- ls ----------------------------------------------------------------------------------


def test_ls_shipped_cassettes() -> None:
    result = run("ls")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows == [
        ["CASSETTE", "#", "MODEL", "KIND", "STATUS", "EVENTS", "FIRST_MS", "TOTAL_MS", "END"],
        ["agents/weather-loop", "0", "claude-sonnet-4-5", "stream", "200", "30", "387", "1777",
         "complete"],
        ["agents/weather-loop", "1", "claude-sonnet-4-5", "stream", "200", "26", "402", "983",
         "complete"],
        ["errors/overloaded-529", "0", "claude-sonnet-4-5", "json", "529", "-", "-", "236",
         "error:overloaded_error"],
        ["errors/stream-overloaded", "0", "claude-sonnet-4-5", "stream", "200", "8", "405", "638",
         "error:overloaded_error"],
        ["streaming/extended-thinking", "0", "claude-sonnet-4-5", "stream", "200", "15", "498",
         "1628", "complete"],
        ["streaming/hello", "0", "claude-sonnet-4-5", "stream", "200", "8", "412", "539",
         "complete"],
        ["streaming/tool-use", "0", "claude-sonnet-4-5", "stream", "200", "30", "387", "1777",
         "complete"],
        ["streaming/web-search", "0", "claude-sonnet-4-5", "stream", "200", "30", "463", "2366",
         "complete"],
    ]  # fmt: skip
    assert result.stderr == ""


def test_ls_reports_broken_cassettes_after_the_rest(tmp_path: Path) -> None:
    hello = (ROOT / "cassettes" / "streaming" / "hello.yaml").read_text()
    (tmp_path / "good.yaml").write_text(hello)
    (tmp_path / "bad.yaml").write_text(hello.replace("status: 200", "status: ok"))
    (tmp_path / "cut.yaml").write_text(
        hello.replace("      events:", "      end: disconnect\n      events:").replace(
            "        - event: message_stop\n          at_ms: 127\n"
            "          data: {type: message_stop}\n",
            "",
        )
    )
    result = run("ls", tmp_path)
    assert result.returncode == 1
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [r[0] for r in rows] == ["CASSETTE", "cut", "good"]
    assert rows[1][-1] == "disconnect"
    assert rows[1][5] == "7"
    assert result.stderr == (
        f"{tmp_path / 'bad.yaml'}:22: interactions[0].response.status: expected an HTTP status "
        "code, got 'ok'\n"
    )


def test_ls_not_a_directory(tmp_path: Path) -> None:
    result = run("ls", tmp_path / "missing")
    assert result.returncode == 2
    assert "not a directory" in result.stderr


# --- show --------------------------------------------------------------------------------


def show(name: str | Path) -> list[str]:
    result = run("show", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_show_hello() -> None:
    lines = show("streaming/hello")
    assert lines[0] == "streaming/hello (cassettes/streaming/hello.yaml)"
    assert lines[3:] == [
        "interaction 0 (line 12)",
        "request:  POST /v1/messages  model claude-sonnet-4-5",
        "user:     Hello",
        "response: 200 stream, 8 events, complete",
        "message:  msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY  model claude-sonnet-4-5-20250929",
        "  [0] text: Hello!",
        "stop:     end_turn",
        "usage:    input_tokens=25 output_tokens=15",
        "timing:   headers at 412 ms, first event at 412 ms, total 539 ms, 118.1 output tokens/s",
    ]


def test_show_by_path() -> None:
    assert show("cassettes/streaming/hello.yaml")[3:] == show("streaming/hello")[3:]


def test_show_tool_use() -> None:
    lines = show("streaming/tool-use")
    assert "  [0] text: Okay, let's check the weather for San Francisco, CA:" in lines
    assert (
        "  [1] tool_use get_weather (toolu_01T1x1fJ34qAmk2tNTrN7Up6): "
        '{"location": "San Francisco, CA", "unit": "fahrenheit"}'
    ) in lines
    assert "stop:     tool_use" in lines
    assert lines[-1] == (
        "timing:   headers at 387 ms, first event at 387 ms, total 1777 ms, 64.0 output tokens/s"
    )


def test_show_thinking() -> None:
    lines = show("streaming/extended-thinking")
    thinking = next(line for line in lines if line.startswith("  [0] thinking: "))
    assert thinking.startswith("  [0] thinking: Let me solve this step by step:")
    assert "      signature: 224 chars" in lines
    assert "  [1] text: 27 * 453 = 12,231" in lines


def test_show_in_stream_error() -> None:
    lines = show("errors/stream-overloaded")
    assert "response: 200 stream, 8 events, error:overloaded_error" in lines
    assert (
        "  [0] text: Once upon a time, in a small village at the edge of a great forest, "
        "there lived a"
    ) in lines
    assert "error:    in-stream error event at 233 ms: overloaded_error: Overloaded" in lines


def test_show_json_error() -> None:
    lines = show("errors/overloaded-529")
    assert lines[3:] == [
        "interaction 0 (line 15)",
        "request:  POST /v1/messages  model claude-sonnet-4-5",
        "user:     Write a haiku about autumn.",
        "response: 529 json",
        "error:    overloaded_error: Overloaded",
        "timing:   headers at 236 ms, total 236 ms",
    ]


def test_show_unknown_and_unsafe_names() -> None:
    missing = run("show", "streaming/nope")
    assert missing.returncode == 1
    assert "no cassette 'streaming/nope'" in missing.stderr
    unsafe = run("show", "../etc/passwd")
    assert unsafe.returncode == 2
    assert "'..' is not allowed" in unsafe.stderr


# --- new ---------------------------------------------------------------------------------


def new(tmp_path: Path, name: str, *args: str) -> Path:
    result = run("new", name, "--cassettes", tmp_path, *args)
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"{name}.yaml"
    assert result.stdout == f"{path}\n"
    return path


def assembled(path: Path, name: str) -> dict[str, object]:
    cassette = load_cassette(path, name)
    events = cassette.interactions[0].response.events
    assert events is not None
    return assemble((e.event, e.data) for e in events)


def lint_clean(path: Path) -> None:
    result = run("lint", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_new_text_thinking_and_tools(tmp_path: Path) -> None:
    path = new(
        tmp_path,
        "chat/weather",
        "--text",
        "Let me look that up for you.",
        "--thinking",
        "The user wants the weather; call the tool.",
        "--tool",
        'get_weather={"city": "Paris", "days": 2}',
        "--tool",
        'get_time={"zone": "CET"}',
        "--prompt",
        "Weather in Paris?",
        "--system",
        "Be brief.",
    )
    lint_clean(path)
    message = assembled(path, "chat/weather")
    content = message["content"]
    assert isinstance(content, list)
    assert [b["type"] for b in content] == ["thinking", "text", "tool_use", "tool_use"]
    assert content[0]["thinking"] == "The user wants the weather; call the tool."
    assert content[0]["signature"].startswith("Eq")
    assert content[1]["text"] == "Let me look that up for you."
    assert content[2]["input"] == {"city": "Paris", "days": 2}
    assert content[2]["name"] == "get_weather"
    assert content[2]["id"].startswith("toolu_01")
    assert content[3]["input"] == {"zone": "CET"}
    assert message["stop_reason"] == "tool_use"
    request = load_cassette(path, "chat/weather").interactions[0].request
    # --tool describes the reply's call: the request neither carries nor matches on tools.
    assert request.match == ("messages", "system")
    assert "tools" not in request.body
    assert request.body["system"] == "Be brief."
    assert request.body["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    text = path.read_text()
    assert "Written by `tapedeck new chat/weather" in text
    # Deterministic: the same options give the same file.
    again = new(tmp_path / "again", "chat/weather", *_same_args())
    assert again.read_text() == new(tmp_path / "third", "chat/weather", *_same_args()).read_text()


def _same_args() -> list[str]:
    return ["--text", "Hi", "--tool", 'f={"a": 1}']


def test_new_pacing(tmp_path: Path) -> None:
    path = new(
        tmp_path,
        "paced",
        "--text",
        "abcdefghijk " * 6,
        "--ttft-ms",
        "250",
        "--tokens-per-second",
        "20",
    )
    response = load_cassette(path, "paced").interactions[0].response
    assert response.time_to_headers_ms == 250
    assert response.events is not None
    assert response.events[0].at_ms == 0
    deltas = [e for e in response.events if e.event == "content_block_delta"]
    # 12-character chunks are 3 tokens: 150 ms apart at 20 tokens a second.
    assert [round(b.at_ms - a.at_ms) for a, b in itertools.pairwise(deltas)] == [150] * (
        len(deltas) - 1
    )
    lines = run("show", "paced", "--cassettes", tmp_path).stdout.splitlines()
    assert lines[-1].startswith("timing:   headers at 250 ms, first event at 250 ms")


def test_new_in_stream_error(tmp_path: Path) -> None:
    text = "Once upon a time there was a small village at the edge of the forest."
    path = new(tmp_path, "story", "--text", text, "--error", "overloaded_error")
    lint_clean(path)
    response = load_cassette(path, "story").interactions[0].response
    assert response.events is not None
    assert response.events[-1].event == "error"
    with pytest.raises(StreamError) as caught:
        assemble((e.event, e.data) for e in response.events)
    assert caught.value.type == "overloaded_error"
    partial = assemble((e.event, e.data) for e in response.events[:-1])
    got = partial["content"][0]["text"]
    assert got
    assert text.startswith(got)
    assert got != text
    assert run("ls", tmp_path).stdout.split()[-1] == "error:overloaded_error"


@pytest.mark.parametrize(
    ("status", "error_type", "retry"), [(529, "overloaded_error", "true"), (400, None, "false")]
)
def test_new_status(tmp_path: Path, status: int, error_type: str | None, retry: str) -> None:
    path = new(tmp_path, "err", "--status", str(status))
    lint_clean(path)
    response = load_cassette(path, "err").interactions[0].response
    assert response.status == status
    assert response.events is None
    body = response.body
    assert body["type"] == "error"
    assert body["error"]["type"] == (error_type or "invalid_request_error")
    assert body["request_id"].startswith("req_")
    headers = dict(response.headers)
    assert headers["x-should-retry"] == retry
    assert headers["content-type"] == "application/json"


def test_new_rate_limit_has_retry_after(tmp_path: Path) -> None:
    headers = dict(load_cassette(new(tmp_path, "rl", "--status", "429"), "rl").interactions[0]
                   .response.headers)  # fmt: skip
    assert headers["retry-after"] == "1"
    assert headers["x-should-retry"] == "true"


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    path = new(tmp_path, "a/b", "--text", "first")
    result = run("new", "a/b", "--cassettes", tmp_path, "--text", "second")
    assert result.returncode == 1
    assert result.stderr == f"tapedeck: error: {path} exists; use --force to overwrite it\n"
    assert "first" in path.read_text()
    new(tmp_path, "a/b", "--text", "second", "--force")
    assert "second" in path.read_text()


@pytest.mark.parametrize("name", ["../x", "/abs/x", "a/../../x"])
def test_new_bad_name(tmp_path: Path, name: str) -> None:
    result = run("new", name, "--cassettes", tmp_path, "--text", "x")
    assert result.returncode == 2
    assert result.stderr.startswith(f"tapedeck: error: bad cassette name {name!r}: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the reply: --text, --tool or --status"),
        (["--status", "200"], "--status 200: expected an error status, 400 to 599"),
        (["--tool", "f=[1]"], "--tool f: input must be a JSON object"),
        (["--tool", "f={oops"], "--tool f: input is not JSON"),
    ],
)
def test_new_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("new", "x", "--cassettes", tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_new_replays_through_the_sdk(tmp_path: Path) -> None:
    new(tmp_path, "chat/hello", "--text", "Hello from a hand-made cassette!", "--prompt", "Hi")
    new(
        tmp_path,
        "chat/tool",
        "--text",
        "Checking.",
        "--tool",
        'get_weather={"city": "Paris"}',
        "--prompt",
        "Weather?",
        "--system",
        "Be brief.",
    )
    new(tmp_path, "chat/busy", "--status", "529", "--prompt", "Busy?")
    with (
        running(tmp_path) as server,
        sdk(server) as client,
    ):
        with client.messages.stream(
            model="claude-opus-4-1",
            max_tokens=77,
            messages=[{"role": "user", "content": "Hi"}],
        ) as stream:
            assert stream.get_final_text() == "Hello from a hand-made cassette!"
        # The program's own tool definition: the cassette matches whatever it defines.
        tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
        with client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=5,
            system="Be brief.",
            tools=tools,
            messages=[{"role": "user", "content": "Weather?"}],
        ) as stream:
            final = stream.get_final_message()
        assert final.stop_reason == "tool_use"
        assert final.content[1].type == "tool_use"
        assert final.content[1].input == {"city": "Paris"}
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "Busy?"}],
                stream=True,
            )
        assert caught.value.status_code == 529
