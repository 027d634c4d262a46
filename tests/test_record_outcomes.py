"""What the recorder did with each upstream answer, as the plugin's report says it: written,
or not and why; and an error answer never replaces a good recording."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from conftest import sdk
from fake_upstream import FakeUpstream, ask
from tapedeck.config import Mode, Settings
from tapedeck.pytest_plugin.client import recorder_of
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

TEST = {"x-tapedeck-test-id": "t1", "x-tapedeck-cassette": "convo"}
ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error"}


def scripted(*answers: int) -> Callable[[httpx.Request], httpx.Response]:
    """A stand-in API answering with these statuses in turn (200: a message)."""
    left = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        status = left.pop(0) if len(left) > 1 else left[0]
        if status != 200:
            error = {"type": ERROR_TYPES[status], "message": "no such model"}
            return httpx.Response(status, json={"type": "error", "error": error})
        message = {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": "good answer"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 2},
        }
        return httpx.Response(200, json=message)

    return answer


def serving(root: Path, mode: Mode, *answers: int, upstream: str = "http://api.invalid") -> Any:
    settings = Settings(
        cassettes=root, port=0, mode=mode, upstream=upstream, timing=Timing.parse("instant")
    )
    transport = httpx.MockTransport(scripted(*answers)) if answers else None
    return ServerThread(settings, transport=transport)


def statuses(path: Path) -> list[int]:
    return [i["response"]["status"] for i in yaml.safe_load(path.read_text())["interactions"]]


@pytest.mark.parametrize("status", [400, 404])
def test_all_mode_keeps_a_good_answer_over_a_4xx(tmp_path: Path, status: int) -> None:
    """A request the API now refuses (a retired model: 404) does not wipe its good
    recording in ``all`` mode; with no good answer recorded, the 4xx is the fixture."""
    with serving(tmp_path, Mode.ALL, 200) as s, sdk(s) as c:
        c.messages.create(**ask("good question"), extra_headers=TEST)
    good = (tmp_path / "convo.yaml").read_bytes()

    with serving(tmp_path, Mode.ALL, status) as s, sdk(s) as c:
        with pytest.raises(anthropic.APIStatusError):
            c.messages.create(**ask("good question"), extra_headers=TEST)
        recorder = recorder_of(s)
        assert recorder is not None
        (outcome,) = recorder.outcomes.of("t1")
    assert (tmp_path / "convo.yaml").read_bytes() == good
    assert outcome.text == (
        f"not recorded into convo: the upstream answered {status}; the good answer recorded "
        "before is kept (written before a good answer only if one follows in this run)"
    )

    with serving(tmp_path, Mode.ALL, status) as s, sdk(s) as c:
        with pytest.raises(anthropic.APIStatusError):
            c.messages.create(**ask("another question"), extra_headers=TEST)
        recorder = recorder_of(s)
        assert recorder is not None
        assert [o.text for o in recorder.outcomes.of("t1")] == [
            "recorded into convo (2 interactions)"
        ]
    assert statuses(tmp_path / "convo.yaml") == [200, status]


def test_a_stream_a_fault_ended_says_it_was_not_recorded(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    with serving(tmp_path, Mode.ONCE, upstream=fake.base_url) as s, sdk(s) as c:
        headers = {**TEST, "x-tapedeck-fault": "truncate:after=3"}
        with c.messages.stream(**ask("three little words"), extra_headers=headers) as stream:
            stream.until_done()
        recorder = recorder_of(s)
        assert recorder is not None
        (outcome,) = recorder.outcomes.of("t1")
    assert outcome.text == (
        "not recorded into convo: a fault ended the stream early; a recording keeps only what "
        "the API sent whole"
    )
    assert not (tmp_path / "convo.yaml").exists()
