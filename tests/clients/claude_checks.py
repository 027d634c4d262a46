"""What the Claude Code suites share (test_claude_code.py: the CLI; test_agent_sdk.py: the
Python and TypeScript Agent SDKs): recording through tapedeck from the stand-in, replaying
with the stand-in gone from another folder, HOME, day, host name and git state with the
``claude-code`` preset, and a fault case compared with the stand-in failing the same way."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from claude_standin import (
    CLI_ENV,
    ClaudeStandIn,
    Place,
    Shown,
    another_day,
    another_machine,
    command,
    environment,
    git_repo,
    place,
    run,
)
from framework_checks import serving

from tapedeck.config import Mode
from tapedeck.config.presets import presets

HI = "say hi"
#: A tool loop: the stand-in calls Read("Paris"), which finds no file, then says so.
READ = "read the file Paris, then say what you found"
ANSWER = "Stand-in answer to: say hi"
PRESET = presets("claude-code")
#: How many days ahead the replays run (libfaketime).
DAYS = 1550


def ask(
    kind: str,
    node_bin: Path,
    base_url: str,
    where: Place,
    prompt: str,
    headers: dict[str, str],
    extra: dict[str, str] | None = None,
    away: bool = False,
) -> Shown:
    """``kind`` (cli, py, ts) asked ``prompt`` in ``where`` against ``base_url``; ``away``:
    :data:`DAYS` days ahead and under another host name."""
    env = environment(base_url, where, headers, extra)
    env["PATH"] = f"{node_bin}:{env['PATH']}"
    asked = command(kind, node_bin, prompt)
    if away and kind == "cli":
        asked = another_machine(
            ["env", *(f"{k}={v}" for k, v in another_day(DAYS).items()), *asked]
        )
    elif away:  # the SDK's program passes it on to the Claude Code it starts
        env[CLI_ENV] = json.dumps(another_day(DAYS))
        asked = another_machine(asked)
    return run(asked, env, where.cwd)


@dataclass
class Recording:
    """What ``kind`` showed while tapedeck recorded it, and where the cassettes are."""

    kind: str
    cassettes: Path
    root: Path
    hi: Shown
    read: Shown
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def record(kind: str, root: Path, node_bin: Path) -> Recording:
    """``kind`` asked "say hi" and the Read tool loop through tapedeck in ``once`` mode,
    from the stand-in, into ``root/cassettes``."""
    cassettes = root / "cassettes"
    cassettes.mkdir()
    where = place(root, "recorded")
    with (
        ClaudeStandIn() as api,
        serving(cassettes, mode=Mode.ONCE, upstream=api.base_url, presets=PRESET) as server,
    ):
        hi = ask(kind, node_bin, server.base_url, where, HI, {"x-tapedeck-cassette": "cc/hi"})
        read = ask(kind, node_bin, server.base_url, where, READ, {"x-tapedeck-cassette": "cc/read"})
    return Recording(kind, cassettes, root, hi, read, api.bodies, api.headers)


def check_recording(recording: Recording) -> None:
    assert recording.hi == Shown(0, ANSWER, "")
    assert recording.read.status == 0
    assert recording.read.out.startswith("Done: File does not exist.")
    # One streamed main request for "say hi", two for the tool loop (the Read call's
    # result goes back in the second); nothing else reached the upstream.
    assert [b.get("stream") for b in recording.requests] == [True, True, True]
    assert [t["name"] for t in recording.requests[1]["tools"]].count("Read") == 1
    assert {p.name for p in (recording.cassettes / "cc").iterdir()} == {"hi.yaml", "read.yaml"}


def check_replay_elsewhere(recording: Recording, node_bin: Path) -> None:
    """The recording replays, the stand-in gone, from another folder and HOME, after a new
    commit, :data:`DAYS` days later and under another host name."""
    where = place(recording.root, "elsewhere")
    git_repo(where.cwd, "a second commit")
    kind = recording.kind
    with serving(recording.cassettes, mode=Mode.NONE, presets=PRESET) as server:
        base = server.base_url
        hi = ask(kind, node_bin, base, where, HI, {"x-tapedeck-cassette": "cc/hi"}, away=True)
        read = ask(kind, node_bin, base, where, READ, {"x-tapedeck-cassette": "cc/read"}, away=True)
        journal = httpx.get(f"{base}/_tapedeck/journal").json()["entries"]
    assert hi == recording.hi, hi
    # The replayed answer is the recorded one (it names the recording's folder); the
    # request that carried the tool result from this folder matched all the same.
    assert read == recording.read
    assert [e["source"] for e in journal] == ["cassette", "cassette", "cassette"]
    # What differed, as Claude Code sent it (the recording has none of it).
    sent = json.dumps(journal[0]["request"]["body"])
    recorded = (recording.cassettes / "cc" / "hi.yaml").read_text()
    day = (datetime.date.today() + datetime.timedelta(days=DAYS)).isoformat()
    differ = [f"Today's date is {day}", str(where.cwd)]
    if kind == "cli":  # the SDKs send no memory folder (under HOME) and no git status
        differ += [str(where.home), "a second commit"]
    for differs in differ:
        assert differs in sent, differs
        assert differs not in recorded


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
BY_NAME = {c.name: c for c in FAULTS}


def _scrubbed(shown: Shown) -> Shown:
    """``shown`` without what differs between two servers: ports."""
    return Shown(shown.status, re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", shown.out), shown.err)


def check_fault(recording: Recording, node_bin: Path, case: FaultCase) -> dict[str, Shown]:
    """tapedeck's fault, set for the run's test id through the admin API (Claude Code sends
    its custom headers with every request, its non-streaming retry included, and a
    stream-only fault in a header refuses that retry), against the stand-in failing the same
    way by itself (from the x-tapedeck-fault header). Returns what each side showed."""
    kind = recording.kind
    seen: dict[str, list[Shown]] = {}
    with (
        ClaudeStandIn() as api,
        serving(recording.cassettes, mode=Mode.NONE, presets=PRESET) as server,
    ):
        for side, base in (("tapedeck", server.base_url), ("api", api.base_url)):
            test_id = f"{kind}-{case.name}-{side}"
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
                _scrubbed(
                    ask(
                        kind,
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
    # The SDKs wrap what Claude Code says: "ResultError: Claude Code returned an error
    # result: ... (exit code: 1)" (Python), "Claude Code returned an error result: ..." (TS).
    assert case.shows in last["tapedeck"].out, last
    assert case.shows in last["api"].out, last
    assert last["tapedeck"].status == last["api"].status == (0 if case.shows == ANSWER else 1)
    if case.name == "garble":  # Claude Code says on stderr what it could not parse
        assert "Could not parse message into JSON" in last["tapedeck"].err
        assert "Could not parse message into JSON" in last["api"].err
    if case.runs > 1:
        assert [s.out for s in seen["tapedeck"][:-1]] == [ANSWER] * (case.runs - 1)
    return last
