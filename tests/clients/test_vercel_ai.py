"""The Vercel AI SDK (`ai` + `@ai-sdk/anthropic`, pinned in tests/clients/node) as a client.

Calls are made by tests/clients/node/vercel/run.mjs with the Node.js of the lock, and their
results come back as JSON. The upstream is tests/clients/node/vercel/standin.mjs, which
answers like the API and fails like it on its own when a request carries
``x-tapedeck-fault``: every fault kind is shown to the SDK twice — injected by tapedeck on
replay, and sent by the stand-in itself — and the SDK must read both the same way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import parse_faults
from tapedeck.shaping.timing import Timing

SCRIPTS = Path(__file__).parent / "node" / "vercel"

#: The calls recorded once and replayed: each prompt is its own request.
JOBS: dict[str, dict[str, Any]] = {
    "generate": {"call": "generate", "prompt": "Say hello plainly"},
    "stream": {"call": "stream", "prompt": "Say hello streamed"},
    "generate-tools": {"call": "generate", "prompt": "Weather in Paris?", "tools": True},
    "stream-tools": {"call": "stream", "prompt": "Weather in Paris, streamed?", "tools": True},
}
#: Calls that give up while they are recorded: the upstream (x-standin-fault) is slower than
#: their timeout, mid-stream and before the headers.
LEAVING: dict[str, dict[str, Any]] = {
    "stream-stall": {
        "call": "stream",
        "prompt": "Leave during a stall",
        "timeout": {"chunkMs": 200},
        "headers": {"x-standin-fault": "stall:after=5,ms=700"},
    },
    "generate-latency": {
        "call": "generate",
        "prompt": "Leave before the headers",
        "timeout": 300,
        "headers": {"x-standin-fault": "latency:ms=700"},
    },
}

STREAM = JOBS["stream"]
#: Each fault kind (vercel/faults.json): the job (one of JOBS, with ``options``), the spec sent
#: as x-tapedeck-fault, and what the SDK shows (part of ``seen``; a quota's 429 message is
#: written as after ``same_reading``).
CASES: dict[str, dict[str, Any]] = json.loads((SCRIPTS / "faults.json").read_text())


class Standin:
    """standin.mjs in a Node process of its own; ``base_url`` is where it listens."""

    def __init__(self, node_bin: Path) -> None:
        self._process = subprocess.Popen(
            [str(node_bin / "node"), str(SCRIPTS / "standin.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip().removeprefix("standin on ")
        assert self.base_url.startswith("http://127.0.0.1:"), self.base_url

    def requests(self) -> list[dict[str, Any]]:
        """The request bodies it answered, each as ``{"body": ..., "fault": spec}``."""
        answer: list[dict[str, Any]] = httpx.get(f"{self.base_url}/_standin/requests").json()
        return answer

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_standin/reset")

    def stop(self) -> None:
        self._process.communicate(timeout=10)  # closes its stdin: it stops


def running(cassettes: Path, **settings: Any) -> ServerThread:
    """tapedeck on a free port over ``cassettes``, instant timing (``with running(...) as s``)."""
    return ServerThread(
        Settings(cassettes=cassettes, port=0, timing=Timing.parse("instant"), **settings)
    )


def run_sdk(node_bin: Path, *jobs: dict[str, Any]) -> list[dict[str, Any]]:
    """What the SDK made of each job (run.mjs's output)."""
    done = subprocess.run(
        [str(node_bin / "node"), str(SCRIPTS / "run.mjs"), json.dumps(jobs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def at(base_url: str, **job: Any) -> dict[str, Any]:
    """``job`` sent to the API at ``base_url``."""
    return {**job, "baseURL": f"{base_url}/v1"}


START = re.compile(r"tapedeck \w+ mode on (?P<url>http://127\.0\.0\.1:\d+),")


@contextmanager
def serving(*args: str) -> Iterator[str]:
    """``tapedeck serve ARGS --port 0`` in a process of its own; yields its base URL."""
    command = [str(Path(sys.executable).parent / "tapedeck"), "serve", "--port", "0", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEDECK_")}
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = []
        while not (found := START.search(line := process.stderr.readline())):
            lines.append(line)
            assert line, f"tapedeck serve did not start: {''.join(lines)}"
        yield found["url"]
    finally:
        process.terminate()
        process.communicate(timeout=10)


def seen(outcome: dict[str, Any]) -> dict[str, Any]:
    """What a program using the SDK notices of an outcome: what was thrown (or, from
    streamText, emitted as an ``error`` part, or rejected by its promises), its class,
    message and status, the retry decision, the HTTP attempts, the text and finish reason, and
    what streamText's promises reject with."""
    error = outcome.get("error") or next(iter(outcome.get("streamErrors") or []), None)
    error = error or outcome.get("finishError")
    where = "thrown" if outcome.get("error") else "part" if outcome.get("streamErrors") else None
    if where is None and error is not None:
        where = "abort" if "abort" in outcome.get("parts", []) else "promise"
    out: dict[str, Any] = {
        "attempts": outcome["attempts"],
        "text": outcome.get("text"),
        "finish": outcome.get("finishReason"),
        "rejects": (outcome.get("finishError") or {}).get("class"),
        "error": None,
    }
    if error is not None:
        last = error.get("lastError") or {}
        out["error"] = {
            "where": where,
            "class": error.get("class") or error.get("name"),
            "message": error["message"],
            "status": error.get("statusCode"),
            "retryable": error.get("isRetryable"),
            "last": last and f"{last['class']} {last.get('statusCode')}: {last['message']}",
            "cause": (error.get("cause") or {}).get("message"),
        }
    return out


def same_reading(outcome: dict[str, Any]) -> str:
    """``outcome`` without what differs between two upstreams answering the same way: the
    serial numbers in ids, and the wording of the 429 of a quota."""
    text = json.dumps(outcome, sort_keys=True)
    text = re.sub(r"(msg|toolu|req)_standin_\d+", r"\1_standin_N", text)
    return re.sub(r"This request would exceed [^\"]*", "<over a rate limit>", text)


def subset(wanted: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    """``got`` cut down to the keys ``wanted`` names, at every level."""
    out: dict[str, Any] = {}
    for key, value in wanted.items():
        have = got.get(key)
        out[key] = (
            subset(value, have) if isinstance(value, dict) and isinstance(have, dict) else have
        )
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, node_bin: Path) -> Any:
    """JOBS and LEAVING recorded in `once` mode through the stand-in, which is then stopped:
    the cassette directory and what the SDK got live, by job."""
    cassettes = tmp_path_factory.mktemp("vercel-cassettes")
    standin = Standin(node_bin)
    try:
        with running(cassettes, mode=Mode.ONCE, upstream=standin.base_url) as server:
            jobs = {**JOBS, **LEAVING}
            live = run_sdk(node_bin, *(at(server.base_url, **job) for job in jobs.values()))
            # The calls that gave up are recorded once the upstream has finished them.
            deadline = time.monotonic() + 10
            while len(list(cassettes.rglob("*.yaml"))) < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
        answered = len(standin.requests())
    finally:
        standin.stop()
    assert answered == 8  # one request each, two for each tool loop
    return cassettes, dict(zip(jobs, live, strict=True))


@pytest.fixture(scope="module")
def replaying(recorded: Any) -> Iterator[ServerThread]:
    """tapedeck in mode `none` over the recordings."""
    with running(recorded[0], mode=Mode.NONE) as server:
        yield server


@pytest.fixture(scope="module")
def standin(node_bin: Path) -> Iterator[Standin]:
    """The stand-in, for the SDK to see it fail on its own."""
    upstream = Standin(node_bin)
    yield upstream
    upstream.stop()


def test_replay_gives_what_the_sdk_got_live(recorded: Any, node_bin: Path) -> None:
    cassettes, live = recorded
    for name in ("generate-tools", "stream-tools"):
        first, second = live[name]["steps"]
        assert first["toolCalls"][0]["input"] == {"city": "Paris"}, name
        assert first["toolResults"][0]["output"] == "18 degrees and sunny", name
        assert second["text"] == "In Paris it is 18 degrees and sunny.", name
    assert live["stream"]["text"] == "Hello from the stand-in: Say hello streamed"
    with running(cassettes, mode=Mode.NONE) as server:
        replayed = run_sdk(node_bin, *(at(server.base_url, **job) for job in JOBS.values()))
    assert dict(zip(JOBS, replayed, strict=True)) == {name: live[name] for name in JOBS}


def test_a_call_that_gives_up_is_recorded_all_the_same(
    recorded: Any, replaying: ServerThread, node_bin: Path
) -> None:
    """The SDK gave up on two answers while they were recorded (timeouts); tapedeck read them
    to their end from the upstream, and replays them whole."""
    cassettes, live = recorded
    assert len(list(cassettes.rglob("*.yaml"))) == 8
    assert seen(live["stream-stall"])["error"]["message"] == "Chunk timeout of 200ms exceeded"
    assert seen(live["generate-latency"])["error"]["class"] == "DOMException"
    patient = [
        at(replaying.base_url, call=job["call"], prompt=job["prompt"]) for job in LEAVING.values()
    ]
    for job, outcome in zip(patient, run_sdk(node_bin, *patient), strict=True):
        assert outcome["text"] == f"Hello from the stand-in: {job['prompt']}", outcome
        assert outcome["finishReason"] == "stop"


@pytest.mark.parametrize("case", CASES)
def test_a_fault_reads_as_the_same_failure_from_the_upstream(
    case: str, replaying: ServerThread, standin: Standin, node_bin: Path
) -> None:
    spec, shows = CASES[case]["spec"], CASES[case]["shows"]
    job = {**JOBS[CASES[case]["job"]], **CASES[case].get("options", {})}
    httpx.post(f"{replaying.base_url}/_tapedeck/reset")
    standin.reset()
    headers = {"x-tapedeck-fault": spec}
    from_tapedeck, from_upstream = run_sdk(
        node_bin,
        at(replaying.base_url, **job, headers=headers),
        at(standin.base_url, **job, headers=headers),
    )
    assert [r["fault"] for r in standin.requests()] == [spec] * from_upstream["attempts"]
    assert same_reading(from_tapedeck) == same_reading(from_upstream)
    got = json.loads(same_reading(seen(from_tapedeck)))
    assert subset(shows, got) == shows


def test_a_fault_of_the_server_reads_as_the_same_fault_of_a_request(
    recorded: Any, replaying: ServerThread, node_bin: Path
) -> None:
    """``tapedeck serve --fault SPEC`` shows the SDK what the request header does."""
    spec = "overloaded:after=3"
    with running(recorded[0], mode=Mode.NONE, faults=parse_faults(spec)) as server:
        (server_wide,) = run_sdk(node_bin, at(server.base_url, **STREAM))
    (per_request,) = run_sdk(
        node_bin, at(replaying.base_url, **STREAM, headers={"x-tapedeck-fault": spec})
    )
    assert server_wide == per_request
    assert seen(server_wide)["error"]["message"] == "Overloaded"


def test_the_preset_lets_each_call_replay_what_the_other_recorded(
    recorded: Any, replaying: ServerThread, node_bin: Path
) -> None:
    """streamText adds ``eager_input_streaming: true`` to each tool, generateText does not:
    without the preset a generateText recording is a miss for streamText (and the SDK shows
    tapedeck's explanation); with ``--preset vercel-ai`` each call replays the other's
    recording, tool loop and all, and reads the same steps as the recording call did live."""
    cassettes, live = recorded
    crossed = [
        at(replaying.base_url, **{**JOBS["generate-tools"], "call": "stream"}),
        at(replaying.base_url, **{**JOBS["stream-tools"], "call": "generate"}),
    ]
    differences = ["true != (absent)", "(absent) != true"]  # this request's, then the recorded
    for outcome, difference in zip(run_sdk(node_bin, *crossed), differences, strict=True):
        error = seen(outcome)["error"]
        assert (error["class"], error["status"], error["retryable"]) == ("APICallError", 404, False)
        assert f"tools[0].eager_input_streaming: {difference}" in error["message"]
    replay = ("--mode", "none", "--cassettes", str(cassettes), "--timing", "instant")
    with serving(*replay, "--preset", "vercel-ai") as url:
        stream, generate = run_sdk(node_bin, *({**job, "baseURL": f"{url}/v1"} for job in crossed))
    assert stream["parts"][-1] == "finish"
    assert stream["streamErrors"] == []
    assert stream["steps"] == live["generate-tools"]["steps"]
    assert generate["steps"] == live["stream-tools"]["steps"]


def test_pings_do_not_keep_the_chunk_timeout_alive(replaying: ServerThread, node_bin: Path) -> None:
    """streamText's ``timeout: {chunkMs}`` waits for content, not bytes: ``ping:interval``
    through a stall (which keeps a read timeout from firing) does not keep it alive."""
    job = {**STREAM, "timeout": {"chunkMs": 300}}
    stall = "stall:after=5,ms=700"
    alone, pinged = run_sdk(
        node_bin,
        at(replaying.base_url, **job, headers={"x-tapedeck-fault": stall}),
        at(replaying.base_url, **job, headers={"x-tapedeck-fault": f"{stall}; ping:interval=100"}),
    )
    assert seen(pinged) == seen(alone)
    assert seen(pinged)["error"]["message"] == "Chunk timeout of 300ms exceeded"


def test_a_stream_fault_on_generate_text_is_refused_as_the_sdk_shows(
    replaying: ServerThread, node_bin: Path
) -> None:
    """A fault kind that only a stream can take, asked for on a generateText request, is
    tapedeck's 400, which the SDK throws as it is, without retrying."""
    job = at(replaying.base_url, **JOBS["generate"], maxRetries=2)
    (outcome,) = run_sdk(node_bin, {**job, "headers": {"x-tapedeck-fault": "truncate:after=5"}})
    error = seen(outcome)["error"]
    assert (error["class"], error["status"], error["retryable"]) == ("APICallError", 400, False)
    assert error["message"].startswith("tapedeck: x-tapedeck-fault: truncate:after=5 only applies")
    assert outcome["attempts"] == 1
