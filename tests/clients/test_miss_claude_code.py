"""What the real Claude Code shows of a miss: recorded from one folder through a stand-in API,
replayed from another with no rule of the user's, it prints tapedeck's 400 word for word —
the working directory where the two requests first differ, and, when another release
recorded the cassette, both releases. The recording names the CLI and its release."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from fake_upstream import FakeUpstream
from tapedeck.config import Mode, Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

#: The release pinned in tests/clients/node's lock.
RELEASE = "2.1.337"


def claude(node_bin: Path, base_url: str, cwd: Path, home: Path) -> str:
    """``claude -p "hello there"`` in ``cwd``; what it printed (stdout and stderr)."""
    env = {
        "PATH": f"{node_bin}:{os.environ['PATH']}",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-api03-test",
        "ANTHROPIC_CUSTOM_HEADERS": "x-tapedeck-cassette: cli",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(node_bin / "claude"), "-p", "hello there"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def serving(cassettes: Path, **settings: object) -> ServerThread:
    """tapedeck over ``cassettes``; its beta flags take no part in matching (Claude Code
    sends fewer once its HOME has been used), so the folder is what differs."""
    return ServerThread(
        Settings(  # type: ignore[arg-type]
            cassettes=cassettes,
            port=0,
            timing=Timing.parse("instant"),
            match_headers=(),
            **settings,
        )
    )


def test_claude_code_prints_the_difference(
    node_bin: Path, tmp_path: Path, fake: FakeUpstream
) -> None:
    cassettes, home = tmp_path / "cassettes", tmp_path / "home"
    recorded, replayed = tmp_path / "recorded-here", tmp_path / "replayed-there"
    for folder in (cassettes, home, recorded, replayed):
        folder.mkdir()
    with serving(cassettes, mode=Mode.ONCE, upstream=fake.base_url) as server:
        printed = claude(node_bin, server.base_url, recorded, home)
    assert "hello there" in printed, printed
    file = cassettes / "cli.yaml"
    document = yaml.safe_load(file.read_text())
    clients = [i["request"].get("client") for i in document["interactions"]]
    assert clients
    assert all(c == {"name": "claude-cli", "release": RELEASE} for c in clients)

    with serving(cassettes, mode=Mode.NONE, miss_status=400) as server:
        printed = claude(node_bin, server.base_url, replayed, home)
    # The first difference is the working directory, shown around it on both sides.
    assert "no cassette matches POST /v1/messages" in printed, printed
    found = re.search(r"at char [\d,]+: \"…([^\"]*)\" != \"…([^\"]*)\"", printed)
    assert found, printed
    assert f"{tmp_path}/replayed-there"[-20:] in found[1], printed
    assert f"{tmp_path}/recorded-here"[-20:] in found[2], printed
    assert "recorded with" not in printed  # the same release

    # The same cassette as if an older release had recorded it.
    file.write_text(file.read_text().replace(f"release: {RELEASE}", "release: 2.1.300"))
    with serving(cassettes, mode=Mode.NONE, miss_status=400) as server:
        printed = claude(node_bin, server.base_url, replayed, home)
    note = f"(recorded with claude-cli 2.1.300; this request is from claude-cli {RELEASE})"
    assert note in printed, printed
