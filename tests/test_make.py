"""The Makefile and .ci/ as a newcomer meets them: `make run` on the port asked for, and
`make test`'s check of what it needs beyond Python, before anything else runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from conftest import ROOT

START_LINE = re.compile(r"tapedeck none mode on http://127\.0\.0\.1:(\d+), (\d+) cassettes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_run(*args: str, env: dict[str, str] | None = None) -> tuple[int, int]:
    """Start `make run ARGS`, read tapedeck's start line, stop it: (port, cassettes)."""
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # make and the server it starts stop together
    )
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if match := START_LINE.search(line):
                return int(match[1]), int(match[2])
        raise AssertionError(f"make run exited {process.wait()} without a start line")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stderr.close()


def test_make_run_serves_the_shipped_cassettes_on_the_port_given() -> None:
    port = free_port()
    shipped = len(list((ROOT / "cassettes").rglob("*.yaml")))
    assert make_run(f"PORT={port}") == (port, shipped)


def test_make_run_honours_tapedeck_port() -> None:
    port = free_port()
    assert make_run(env={"TAPEDECK_PORT": str(port)})[0] == port


def bare_path(tmp_path: Path, *commands: str) -> str:
    """A PATH holding only ``commands`` (links to the real ones)."""
    for name in commands:
        found = shutil.which(name)
        assert found, f"{name} is needed to run this test"
        (tmp_path / name).symlink_to(found)
    return str(tmp_path)


def prereqs(path: str) -> subprocess.CompletedProcess[str]:
    """.ci/prereqs run with only ``path`` to find commands on."""
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "prereqs")],
        env={"PATH": path},
        capture_output=True,
        text=True,
        check=False,
    )


def test_prereqs_say_what_is_missing_and_how_to_get_it(tmp_path: Path) -> None:
    result = prereqs(bare_path(tmp_path, "bash", "id"))
    assert result.returncode == 1
    assert "missing: Node.js 20.19+ with npm (found: none)" in result.stderr
    assert "https://nodejs.org/en/download" in result.stderr
    assert "missing: redis-server" in result.stderr
    assert "apt-get install redis-server" in result.stderr


def test_prereqs_refuse_a_node_too_old(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, body in {
        "node": 'case "$1" in --version) echo v18.19.1;; -e) exit 1;; esac',
        "npm": "echo 10.2.4",
    }.items():
        (fake / name).write_text(f"#!/bin/sh\n{body}\n")
        (fake / name).chmod(0o755)
    result = prereqs(bare_path(tmp_path, "bash", "id", "redis-server") + os.pathsep + str(fake))
    assert result.returncode == 1
    assert "missing: Node.js 20.19+ with npm (found: v18.19.1)" in result.stderr
    assert "missing: redis-server" not in result.stderr


def test_prereqs_pass_on_this_machine() -> None:
    result = subprocess.run(
        [str(ROOT / ".ci" / "prereqs")], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
