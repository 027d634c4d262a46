"""LiteLLM hangs up before the end of a stream, and the recording survives it
(docs/recording.md#when-the-client-leaves-early).

``litellm.completion(..., stream=True)`` stops reading once ``message_delta`` gives it the
stop reason, and closes the connection: an upstream whose ``message_stop`` comes a moment
later is answering a client that has gone. tapedeck, recording, reads the answer on and
writes it; the replay (upstream gone) answers LiteLLM, streamed and not, as the upstream did.

The upstream is :mod:`late_stop_upstream`, holding ``message_stop`` back until LiteLLM has
finished its loop — so LiteLLM has certainly hung up before the end arrives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import pytest
import yaml

from fake_upstream import event_names
from late_stop_upstream import LateStopUpstream
from tapedeck.config import Mode

pytestmark = pytest.mark.filterwarnings("ignore:Items? .* `ReadOnly` qualifier:UserWarning")
MODEL = "anthropic/claude-sonnet-4-5"
TEXT = "late words for LiteLLM"
CASSETTE = "litellm-hangs-up"


@pytest.fixture
def late() -> Iterator[LateStopUpstream]:
    upstream = LateStopUpstream(late_s=10.0)
    with upstream:
        yield upstream


def ask(base_url: str, stream: bool) -> Any:
    return litellm.completion(
        model=MODEL,
        messages=[{"role": "user", "content": TEXT}],
        stream=stream,
        max_tokens=64,
        api_base=base_url,
        api_key="dummy",
        extra_headers={"x-tapedeck-cassette": CASSETTE},
    )


def streamed(base_url: str) -> tuple[str, str | None]:
    """The text and finish reason LiteLLM streams from ``base_url``."""
    text, finish = "", None
    for chunk in ask(base_url, stream=True):
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
    return text, finish


def test_a_stream_litellm_hangs_up_on_is_recorded_and_replays(
    tmp_path: Path, late: LateStopUpstream, make_server: Any, tapedeck_log: Any
) -> None:
    """``make_server`` and ``tapedeck_log`` are tests/conftest.py's."""
    with make_server(tmp_path, mode=Mode.ONCE, upstream=late.base_url) as s:
        tapedeck_log.only(s)
        text, finish = streamed(s.base_url)
        # LiteLLM is done, and message_stop has not even been sent: it hung up before it.
        assert late.delta_sent.is_set()
        [seen] = late.requests()
        assert "message_stop" not in seen.sent
        # tapedeck sees LiteLLM leave, and reads on: message_stop comes after that.
        assert tapedeck_log.wait_for(r"\(client went away\)$", timeout=0.3) == []
        late.release.set()
        assert tapedeck_log.wait_for(r"^POST /v1/messages 200 .*\(client went away\)$"), (
            tapedeck_log.lines()
        )
        assert late.wait_ended(seen, timeout=5)
    assert (text, finish) == (TEXT, "stop")
    assert seen.outcome == "complete"
    assert tapedeck_log.matching(f"^recorded into {CASSETTE} ")
    [path] = tmp_path.rglob("*.yaml")
    [interaction] = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    assert [e["event"] for e in interaction["response"]["events"]] == event_names(TEXT)
    # The replay answers LiteLLM from the cassette alone, streamed and as one JSON message.
    with make_server(tmp_path, mode=Mode.NONE) as s:
        assert streamed(s.base_url) == (TEXT, "stop")
        whole = ask(s.base_url, stream=False)
    assert (whole.choices[0].message.content, whole.choices[0].finish_reason) == (TEXT, "stop")
    assert len(late.requests()) == 1
