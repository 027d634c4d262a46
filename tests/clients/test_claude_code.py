"""Claude Code (the ``claude`` CLI, pinned in tests/clients/node) through tapedeck: recorded
once from the stand-in API, replayed with the stand-in gone from another folder, HOME, day
(libfaketime), host name and git state with the ``claude-code`` preset, a miss with and
without the preset, and every fault kind compared with the same failure from the stand-in
itself (docs/clients.md#claude-code-and-the-agent-sdks)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from claude_checks import (
    FAULTS,
    HI,
    PRESET,
    FaultCase,
    Recording,
    ask,
    check_fault,
    check_recording,
    check_replay_elsewhere,
    record,
    serving,
)
from claude_standin import ClaudeStandIn, place

from tapedeck.config import Mode

pytest_plugins = ["pytester"]
#: The repository root (docs/).
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, node_bin: Path) -> Recording:
    return record("cli", tmp_path_factory.mktemp("claude-code"), node_bin)


def test_claude_code_records_its_stream_and_its_tool_loop(recording: Recording) -> None:
    check_recording(recording)
    assert recording.headers[0]["user-agent"].startswith("claude-cli/2.1.337 (external, sdk-cli")


def test_the_recording_replays_from_another_folder_home_day_machine_and_git_state(
    recording: Recording, node_bin: Path
) -> None:
    check_replay_elsewhere(recording, node_bin)


def test_without_the_preset_claude_code_hides_the_miss_with_it_shows_tapedecks_words(
    recording: Recording, node_bin: Path
) -> None:
    where = place(recording.root, "no-preset")
    cassette = {"x-tapedeck-cassette": "cc/hi"}
    with serving(recording.cassettes, mode=Mode.NONE) as server:
        bare = ask("cli", node_bin, server.base_url, where, HI, cassette)
    # A 404 is retried once without streaming and then blamed on the model.
    assert bare.status == 1
    assert "There's an issue with the selected model" in bare.out
    assert "tapedeck" not in bare.out
    with serving(recording.cassettes, mode=Mode.NONE, presets=PRESET) as server:
        miss = ask("cli", node_bin, server.base_url, where, "say bye", cassette)
    assert miss.status == 1
    assert miss.out.startswith("API Error: 400 tapedeck: no cassette matches POST /v1/messages")
    assert "say bye" in miss.out  # the difference, word for word


@pytest.mark.parametrize("case", FAULTS, ids=[c.name for c in FAULTS])
def test_each_fault_looks_to_claude_code_as_the_same_failure_of_the_api(
    recording: Recording, node_bin: Path, case: FaultCase
) -> None:
    check_fault(recording, node_bin, case)


def test_the_pytest_recipe_of_the_docs_records_and_replays(
    pytester: pytest.Pytester, node_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/clients.md's pytest example, recorded from the stand-in in ``once`` mode and
    replayed in ``none`` mode with it gone, from other folders (pytester's run directories)."""
    text = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(# tests/test_agent\.py\n.*?)```", text, re.S)
    pytester.makefile(".ini", pytest="[pytest]\ntapedeck_presets = claude-code\n")
    (pytester.path / "tests" / "cassettes").mkdir(parents=True)
    (pytester.path / "tests" / "test_agent.py").write_text(example)
    home = pytester.path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": f"{node_bin}:{os.environ['PATH']}"}
    with ClaudeStandIn() as api:
        for name, value in {**env, "TAPEDECK_UPSTREAM": api.base_url}.items():
            monkeypatch.setenv(name, value)
        recorded = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--tapedeck-mode", "once", timeout=300
        )
        recorded.assert_outcomes(passed=2)
        asked = len(api.bodies)
    # The first test's stream; the second's stream, cut, asked again, cut, then asked
    # without streaming (the fault spares that), which is recorded and then replayed.
    assert asked == 4
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    replayed.assert_outcomes(passed=2)
