"""A stand-in API that answers Claude Code (and the Agent SDKs, which run it) plausibly, and
how to run Claude Code — the CLI or a program on either Agent SDK — in a place of its own,
for tests/clients/test_claude_code.py and test_agent_sdk.py (through claude_checks.py).

The stand-in is :class:`standin.StandIn` (which fails as the API does, from the
``x-tapedeck-fault`` header) with what it answers narrowed to what Claude Code can use:

- a prompt that asks to "glob" (and no tool result yet) gets one ``Glob`` call, its
  ``pattern`` ``"Paris"`` — a read-only tool that needs no permission and finds nothing, so
  the next request carries its ``tool_result`` and gets ``Done: ...``;
- everything else (the main request of "say hi", title or summary side requests) gets text:
  the stand-in never calls Claude Code's other tools, which would start subagents.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standin import StandIn

#: The tool the stand-in calls when asked to glob, and the word that asks.
TOOL = "Read"
ASK_FOR_TOOL = "read"

#: The environment every Claude Code run gets: no traffic but to the server, no update
#: check, one retry at most and short timeouts so that a fault test ends quickly.
QUIET = {
    "ANTHROPIC_API_KEY": "dummy",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "1",
    "API_TIMEOUT_MS": "8000",
    "NO_COLOR": "1",
}


def _last_user_text(body: Mapping[str, Any]) -> tuple[str, bool]:
    """The user's words in the last user turn (its last text block: the ones before it are
    Claude Code's reminders), and whether the turn carries a tool result."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content, False
        blocks = [b for b in content or [] if isinstance(b, dict)]
        texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
        return (texts[-1] if texts else ""), any(b.get("type") == "tool_result" for b in blocks)
    return "", False


class ClaudeStandIn(StandIn):
    """:class:`StandIn`, answering Claude Code's requests as the module docstring says."""

    async def _answer(
        self, send: Any, body: dict[str, Any], serial: int, spec: str, seen: int
    ) -> None:
        text, has_result = _last_user_text(body)
        tools = body.get("tools") or []
        wanted = [t for t in tools if t.get("name") == TOOL]
        if has_result or (ASK_FOR_TOOL in text.lower() and wanted):
            shown = {**body, "tools": wanted}
        else:
            shown = {**body, "tools": [], "messages": [{"role": "user", "content": text}]}
        await super()._answer(send, shown, serial, spec, seen)


@dataclass
class Place:
    """Where Claude Code runs: its working directory (a git repository) and HOME."""

    cwd: Path
    home: Path


def git_repo(path: Path, message: str = "first") -> Path:
    """A git repository at ``path`` with one commit (created if needed)."""
    path.mkdir(parents=True, exist_ok=True)
    git = ["git", "-c", "user.email=dev@example.com", "-c", "user.name=Dev"]
    if not (path / ".git").exists():
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=path, check=True)
    (path / "README.md").write_text(f"{message}\n")
    subprocess.run([*git, "add", "README.md"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=path, check=True)
    return path


def place(root: Path, name: str) -> Place:
    """A fresh working directory (a git repository) and HOME under ``root``."""
    home = root / name / "home"
    home.mkdir(parents=True)
    return Place(git_repo(root / name / "project"), home)


def environment(
    base_url: str,
    where: Place,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a Claude Code run against ``base_url``; ``headers`` are sent with
    every request (``ANTHROPIC_CUSTOM_HEADERS``), e.g. ``x-tapedeck-fault``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(where.home),
        "ANTHROPIC_BASE_URL": base_url,
        **QUIET,
        **(extra or {}),
    }
    if headers:
        env["ANTHROPIC_CUSTOM_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in headers.items())
    return env


@dataclass(frozen=True)
class Shown:
    """What a Claude Code run showed: its exit status, standard output and error."""

    status: int
    out: str
    err: str


def libfaketime() -> Path:
    """Debian's libfaketime (the ``faketime`` package; .ci/prereqs installs it), preloaded
    directly: under the ``faketime`` command Claude Code's native binary fails to open the
    wrapper's shared clock (``sem_open failed``)."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        raise RuntimeError("faketime is missing: run .ci/prereqs --install (apt-get)")
    return found[0]


def another_day(days: int) -> dict[str, str]:
    """Environment that puts a process's clock ``days`` days ahead (libfaketime).

    The clock is offset rather than started at a time (``FAKETIME=@...``), and only the
    Claude Code process gets the library, never a process that starts it: libfaketime then
    shares its clock with the children through a semaphore that Claude Code's native binary
    fails to open (``sem_open failed``), and it exits."""
    return {"LD_PRELOAD": str(libfaketime()), "FAKETIME": f"+{days}d"}


#: The variable the Agent SDK programs pass on to the Claude Code they start (a JSON
#: object of environment variables), so that only Claude Code runs on another day.
CLI_ENV = "CLAUDE_CLI_ENV"


def another_machine(command: list[str], host: str = "elsewhere") -> list[str]:
    """``command`` under the host name ``host`` (a UTS namespace of its own), where this
    user may make one (root); else ``command`` as it is."""
    if os.geteuid() != 0 or not Path("/usr/bin/unshare").exists():
        return command
    return ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]


def sweep_faketime() -> None:
    """Remove the semaphores and shared memory libfaketime leaves in /dev/shm, named after
    processes that have ended: Claude Code exits without releasing them, and a later process
    given the same pid would fail to create its own ("sem_open failed: File exists")."""
    shm = Path("/dev/shm")
    for leftover in [*shm.glob("sem.faketime_sem_*"), *shm.glob("faketime_shm_*")]:
        pid = leftover.name.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path("/proc", pid).exists():
            leftover.unlink(missing_ok=True)


def run(command: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 120) -> Shown:
    """Run a Claude Code process (the CLI or an SDK's script) to its end."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if "LD_PRELOAD" in " ".join(command) or CLI_ENV in env:
        sweep_faketime()
    return Shown(done.returncode, done.stdout.strip(), done.stderr.strip())


#: A Python program on the Agent SDK: asks its one argument in the working directory and
#: prints the result's text (or the error), exiting 1 when the SDK reports an error. It
#: passes the variables of $CLAUDE_CLI_ENV on to Claude Code.
AGENT_SDK_PY = """
import json, os, sys
import anyio
from claude_agent_sdk import ClaudeAgentOptions, ResultMessage, query

async def main():
    result = None
    cli_env = json.loads(os.environ.get("CLAUDE_CLI_ENV") or "{}")
    options = ClaudeAgentOptions(cwd=os.getcwd(), env=cli_env)
    try:
        async for message in query(prompt=sys.argv[1], options=options):
            if isinstance(message, ResultMessage):
                result = message
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
        return 1
    if result is None:
        print("no result")
        return 2
    print(result.result or "")
    return 1 if result.is_error else 0

sys.exit(anyio.run(main))
"""
#: The clients that run Claude Code: the CLI, the Python and the TypeScript Agent SDK.
KINDS = ("cli", "py", "ts")


def command(kind: str, node_bin: Path, prompt: str) -> list[str]:
    """How ``kind`` is asked ``prompt``: ``claude -p``, or a program on an Agent SDK."""
    if kind == "cli":
        return [str(node_bin / "claude"), "-p", prompt]
    if kind == "py":
        return [sys.executable, "-c", AGENT_SDK_PY, prompt]
    script = node_bin.parent.parent / "agent_sdk.mjs"  # tests/clients/node/agent_sdk.mjs
    return [str(node_bin / "node"), str(script), prompt]
