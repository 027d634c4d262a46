"""Claude Code (the ``claude`` CLI, pinned in tests/clients/node) through tapedeck: recorded
once from the stand-in API, replayed with the stand-in gone from another folder, HOME, day
(libfaketime), host name and git state with the ``claude-code`` preset, and every fault kind
compared with the same failure from the stand-in itself (docs/clients.md)."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from claude_standin import (
    ClaudeStandIn,
    Place,
    Shown,
    environment,
    git_repo,
    place,
    run,
)
from claude_standin import elsewhere as elsewhere_

from tapedeck.config import Mode, Settings
from tapedeck.config.presets import presets
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

HI = "say hi"
#: A tool loop: the stand-in calls Read("Paris"), which finds no file, then says so.
READ = "read the file Paris, then say what you found"
PRESET = presets("claude-code")


@contextmanager
def serving(cassettes: Path, **settings: Any) -> Iterator[ServerThread]:
    """tapedeck on a free port over ``cassettes``, instant timing."""
    with ServerThread(
        Settings(cassettes=cassettes, port=0, timing=Timing.parse("instant"), **settings)
    ) as server:
        yield server


def claude(
    node_bin: Path,
    base_url: str,
    where: Place,
    prompt: str,
    headers: dict[str, str],
    extra: dict[str, str] | None = None,
    elsewhere: bool = False,
) -> Shown:
    """``claude -p PROMPT`` in ``where`` against ``base_url``; ``elsewhere``: on another day
    and under another host name."""
    env = environment(base_url, where, headers, extra)
    env["PATH"] = f"{node_bin}:{env['PATH']}"
    command = [str(node_bin / "claude"), "-p", prompt]
    return run(elsewhere_(command) if elsewhere else command, env, where.cwd)


@dataclass
class Recording:
    cassettes: Path
    root: Path
    hi: Shown
    read: Shown
    requests: list[dict[str, Any]]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, node_bin: Path) -> Recording:
    root = tmp_path_factory.mktemp("claude-code")
    cassettes = root / "cassettes"
    cassettes.mkdir()
    where = place(root, "recorded")
    with (
        ClaudeStandIn() as api,
        serving(cassettes, mode=Mode.ONCE, upstream=api.base_url, presets=PRESET) as server,
    ):
        hi = claude(node_bin, server.base_url, where, HI, {"x-tapedeck-cassette": "cc/hi"})
        read = claude(node_bin, server.base_url, where, READ, {"x-tapedeck-cassette": "cc/read"})
    return Recording(cassettes, root, hi, read, api.bodies)


def test_claude_code_records_its_stream_and_its_tool_loop(recording: Recording) -> None:
    assert recording.hi == Shown(0, "Stand-in answer to: say hi", "")
    assert recording.read.status == 0
    assert recording.read.out.startswith("Done: File does not exist.")
    # One streamed main request for "say hi", two for the tool loop (the Read call's
    # result goes back in the second); nothing else reached the upstream.
    assert [b.get("stream") for b in recording.requests] == [True, True, True]
    assert [t["name"] for t in recording.requests[1]["tools"]].count("Read") == 1
    assert {p.name for p in (recording.cassettes / "cc").iterdir()} == {"hi.yaml", "read.yaml"}


def test_the_recording_replays_from_another_folder_home_day_machine_and_git_state(
    recording: Recording, node_bin: Path
) -> None:
    where = place(recording.root, "elsewhere")
    git_repo(where.cwd, "a second commit")
    with serving(recording.cassettes, mode=Mode.NONE, presets=PRESET) as server:
        hi = claude(
            node_bin, server.base_url, where, HI, {"x-tapedeck-cassette": "cc/hi"}, elsewhere=True
        )
        read = claude(
            node_bin,
            server.base_url,
            where,
            READ,
            {"x-tapedeck-cassette": "cc/read"},
            elsewhere=True,
        )
        journal = httpx.get(f"{server.base_url}/_tapedeck/journal").json()["entries"]
    assert hi == recording.hi
    # The replayed answer is the recorded one (it names the recording's folder); the
    # request that carried the tool result from this folder matched all the same.
    assert read == recording.read
    assert [e["source"] for e in journal] == ["cassette", "cassette", "cassette"]
    # What differed, as Claude Code sent it (the recording has none of it).
    sent = json.dumps(journal[0]["request"]["body"])
    recorded = (recording.cassettes / "cc" / "hi.yaml").read_text()
    day = (datetime.date.today() + datetime.timedelta(days=1550)).isoformat()
    for differs in (f"Today's date is {day}", str(where.cwd), str(where.home), "a second commit"):
        assert differs in sent
        assert differs not in recorded


def test_without_the_preset_claude_code_hides_the_miss_with_it_shows_tapedecks_words(
    recording: Recording, node_bin: Path
) -> None:
    where = place(recording.root, "no-preset")
    with serving(recording.cassettes, mode=Mode.NONE) as server:
        bare = claude(node_bin, server.base_url, where, HI, {"x-tapedeck-cassette": "cc/hi"})
    # A 404 is retried once without streaming and then blamed on the model.
    assert bare.status == 1
    assert "There's an issue with the selected model" in bare.out
    assert "tapedeck" not in bare.out
    with serving(recording.cassettes, mode=Mode.NONE, presets=PRESET) as server:
        miss = claude(node_bin, server.base_url, where, "say bye", {"x-tapedeck-cassette": "cc/hi"})
    assert miss.status == 1
    assert miss.out.startswith("API Error: 400 tapedeck: no cassette matches POST /v1/messages")
    assert "say bye" in miss.out  # the difference, word for word


@dataclass(frozen=True)
class FaultCase:
    name: str
    spec: str
    #: Environment for this case (timeouts, retries).
    extra: dict[str, str]
    #: What Claude Code shows on both sides: its answer, or the start of its error.
    shows: str
    #: Runs in a row (quota refuses the second).
    runs: int = 1


ANSWER = "Stand-in answer to: say hi"
FAULTS = [
    FaultCase("ping", "ping:every=2", {}, ANSWER),
    # A stream that fails is asked again without streaming: the answer still comes.
    FaultCase("error", "error:after=4,type=api_error,message=boom", {}, ANSWER),
    FaultCase("overloaded", "overloaded:after=4", {}, ANSWER),
    FaultCase("disconnect", "disconnect:after=4", {}, ANSWER),
    FaultCase("truncate", "truncate:after=5", {}, ANSWER),
    FaultCase("garble", "garble:after=4", {}, ANSWER),
    FaultCase("status-529", "status:code=529,retry_after_ms=1,times=1", {}, ANSWER),
    FaultCase(
        "status-529-no-retries",
        "status:code=529,retry_after_ms=1,times=1",
        {"CLAUDE_CODE_MAX_RETRIES": "0"},
        "API Error: 529 Overloaded. This is a server-side issue, usually temporary",
    ),
    FaultCase(
        "status-429",
        "status:code=429,retry_after_ms=1",
        {},
        "API Error: Request rejected (429) · Rate limited",
    ),
    FaultCase(
        "latency",
        "latency:ms=4000",
        {"API_TIMEOUT_MS": "1500", "CLAUDE_CODE_MAX_RETRIES": "0"},
        "Request timed out. If the API is slow to answer, or a proxy or gateway holds "
        "responses, set API_TIMEOUT_MS above 1500.",
    ),
    FaultCase("stall", "stall:after=4,ms=1500", {}, ANSWER),
    FaultCase(
        "quota",
        "quota:requests=1/60s",
        {"CLAUDE_CODE_MAX_RETRIES": "0"},
        "API Error: Request rejected (429) · This request would exceed your organization's "
        "rate limit of 1 requests per minute",
        runs=2,
    ),
]


def _shown(shown: Shown) -> Shown:
    """``shown`` without what differs between two servers: ports."""
    return Shown(shown.status, re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", shown.out), shown.err)


@pytest.mark.parametrize("case", FAULTS, ids=[c.name for c in FAULTS])
def test_each_fault_looks_to_claude_code_as_the_same_failure_of_the_api(
    recording: Recording, node_bin: Path, case: FaultCase
) -> None:
    """tapedeck's fault, set for the run's test id through the admin API (Claude Code sends
    its custom headers with every request, its non-streaming retry included), against the
    stand-in failing the same way by itself (from the x-tapedeck-fault header)."""
    seen: dict[str, list[Shown]] = {}
    with (
        ClaudeStandIn() as api,
        serving(recording.cassettes, mode=Mode.NONE, presets=PRESET) as server,
    ):
        for side, base in (("tapedeck", server.base_url), ("api", api.base_url)):
            test_id = f"{case.name}-{side}"
            headers = {"x-tapedeck-cassette": "cc/hi", "x-tapedeck-test-id": test_id}
            if side == "api":
                headers["x-tapedeck-fault"] = case.spec
            else:
                put = httpx.put(
                    f"{base}/_tapedeck/faults",
                    headers={"x-tapedeck-test-id": test_id},
                    json={"faults": case.spec},
                )
                assert put.status_code == 200, put.text
            seen[side] = [
                _shown(
                    claude(
                        node_bin,
                        base,
                        place(recording.root, f"{test_id}-{n}"),
                        HI,
                        headers,
                        case.extra,
                    )
                )
                for n in range(case.runs)
            ]
    last = {side: shown[-1] for side, shown in seen.items()}
    assert last["tapedeck"].out.startswith(case.shows), last
    assert last["api"].out.startswith(case.shows), last
    assert last["tapedeck"].status == last["api"].status == (0 if case.shows == ANSWER else 1)
    if case.name == "garble":  # Claude Code says on stderr what it could not parse
        assert "Could not parse message into JSON" in last["tapedeck"].err
        assert "Could not parse message into JSON" in last["api"].err
    if case.runs > 1:
        assert [s.out for s in seen["tapedeck"][:-1]] == [ANSWER] * (case.runs - 1)
