"""The examples of docs/agents.md, run: the documented project's agent loop recorded through
the pytest plugin against a stand-in agent, then replayed at another time with the upstream
gone (its normalizer is what makes that work); the config block; the script block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agent_loop import client_for, deck, sdk_runner
from agent_upstream import AgentServer
from conftest import ROOT
from tapedeck.config.settings import from_file, resolve
from test_tools_cli import run as tapedeck

pytest_plugins = ["pytester"]

DOC = ROOT / "docs" / "agents.md"
GONE = "http://127.0.0.1:9"
INI = """\
[pytest]
filterwarnings =
    error
    ignore:The model .* is deprecated:DeprecationWarning
"""


def doc_block(first_line: str) -> str:
    """The fenced block of docs/agents.md whose first line starts with ``first_line``."""
    for block in re.findall(r"^```\w*\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"docs/agents.md lost its {first_line!r} block")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=90)


def test_the_documented_loop_records_whole_and_replays_later(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    pytester.makefile(".ini", pytest=INI)
    pyproject = pytester.path / "pyproject.toml"
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_agent.py").write_text(
        doc_block("# tests/test_agent.py"), encoding="utf-8"
    )
    with AgentServer() as agent:
        documented = doc_block("# pyproject.toml")
        pyproject.write_text(documented.replace("https://api.anthropic.com", agent.base_url))
        run(pytester, "--tapedeck-mode", "new_episodes").assert_outcomes(passed=1)
        assert agent.count == 3

    cassette = pytester.path / "tests/cassettes/test_agent/test_the_agent_answers.yaml"
    steps = yaml.safe_load(cassette.read_text(encoding="utf-8"))["interactions"]
    assert [len(s["request"]["body"]["messages"]) for s in steps] == [1, 3, 5]

    # CI, later: the tool results carry another time; the normalizer makes them match.
    pyproject.write_text(documented.replace("https://api.anthropic.com", GONE))
    run(pytester).assert_outcomes(passed=1)

    # Without it, the second step no longer matches its recording.
    no_rule = documented.split("# The tools below")[0].replace("https://api.anthropic.com", GONE)
    pyproject.write_text(no_rule)
    missed = run(pytester)
    missed.assert_outcomes(failed=1)
    missed.stdout.fnmatch_lines(["*no cassette matches POST /v1/messages*"])


def test_the_documented_normalizers_load(tmp_path: Path) -> None:
    config = tmp_path / "tapedeck.yaml"
    config.write_text(doc_block("# tapedeck.yaml"), encoding="utf-8")
    settings = resolve(from_file(config))
    assert [r.replace for r in settings.normalize] == ["<time>", "<tmp>"]
    time, tmp = settings.normalize
    assert time.pattern.sub(time.replace, "at 2026-12-01T10:00:00Z") == "at <time>"
    assert tmp.pattern.sub(tmp.replace, "wrote /tmp/out-3.json") == "wrote <tmp>"


def test_the_documented_script_replays_through_the_tool_runner(tmp_path: Path) -> None:
    script = tmp_path / "loop.yaml"
    script.write_text(doc_block("# loop.yaml"), encoding="utf-8")
    cassettes = tmp_path / "cassettes"
    made = tapedeck("new", "agents/weather", "--cassettes", cassettes, "--script", script)
    assert made.returncode == 0, made.stderr
    with deck(cassettes, "none") as server, client_for(server, "agents/weather") as client:
        answers = sdk_runner(client)
    assert answers[-1]["content"][0]["text"].endswith("it is 14:05 in Paris.")
    shown = tapedeck("show", "agents/weather", "--cassettes", cassettes).stdout
    documented = doc_block("$ tapedeck show agents/weather")
    steps = [line for line in documented.splitlines() if line.startswith("  ")]
    for line in steps:
        assert line in shown, line
