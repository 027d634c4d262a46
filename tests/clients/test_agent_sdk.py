"""The Claude Agent SDKs — ``claude-agent-sdk`` (Python, in .venv-clients) and
``@anthropic-ai/claude-agent-sdk`` (TypeScript, in tests/clients/node, run by
node/agent_sdk.mjs) — each running the Claude Code it bundles: recorded once from the
stand-in API, replayed with the stand-in gone from another folder, HOME, day, host name and
git state with the ``claude-code`` preset, and the faults that show differently from an
answer compared with the stand-in failing the same way (the others behave as for the CLI,
test_claude_code.py: the SDKs run the same Claude Code)."""

from __future__ import annotations

from pathlib import Path

import pytest
from claude_checks import BY_NAME, Recording, check_fault, check_recording, check_replay_elsewhere
from claude_checks import record as record_kind

SDKS = {
    "py": "claude-cli/2.1.337 (external, sdk-py, agent-sdk/0.2.190)",
    "ts": "claude-cli/2.1.337 (external, sdk-ts, agent-sdk/0.3.337)",
}
#: A fault the SDK retries away (its program sees the answer) and the ones it reports.
FAULTS = ["disconnect", "status-429", "latency", "quota"]


@pytest.fixture(scope="module", params=list(SDKS))
def recording(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, node_bin: Path
) -> Recording:
    kind = request.param
    return record_kind(kind, tmp_path_factory.mktemp(f"agent-sdk-{kind}"), node_bin)


def test_the_sdk_records_its_stream_and_its_tool_loop(recording: Recording) -> None:
    check_recording(recording)
    assert recording.headers[0]["user-agent"] == SDKS[recording.kind]


def test_the_recording_replays_from_another_folder_home_day_machine_and_git_state(
    recording: Recording, node_bin: Path
) -> None:
    check_replay_elsewhere(recording, node_bin)


@pytest.mark.parametrize("name", FAULTS)
def test_a_fault_looks_to_the_sdk_as_the_same_failure_of_the_api(
    recording: Recording, node_bin: Path, name: str
) -> None:
    check_fault(recording, node_bin, BY_NAME[name])
