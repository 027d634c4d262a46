"""LiteLLM (``litellm.completion`` with an ``anthropic/`` model) through tapedeck: recorded from
the stand-in API, replayed with it gone, and every fault kind compared with the stand-in failing
the same way (docs/clients.md#litellm).

LiteLLM does not use the ``anthropic`` SDK: it posts to ``{api_base}/v1/messages`` with its
own httpx client and reads the stream with its own SSE line parser
(``litellm/llms/anthropic/chat/handler.py``), and it stops reading once the
``message_delta`` gives it the stop reason. ``api_base=`` points it at tapedeck,
``extra_headers=`` carries the fault.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import framework_checks as checks
import litellm
import pytest
import yaml
from standin import StandIn

# LiteLLM's own TypedDicts, built lazily on the first call, warn under pydantic.
pytestmark = pytest.mark.filterwarnings("ignore:Items? .* `ReadOnly` qualifier:UserWarning")
MODEL = "anthropic/claude-sonnet-4-5"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def get_weather(city: str) -> str:
    return f"{city}: 18°C and sunny"


class LiteLLM:
    """``litellm.completion``, as its users call it."""

    def _call(
        self,
        base_url: str,
        messages: list[dict[str, Any]],
        *,
        stream: bool,
        fault: str | None = None,
        retries: int = 0,
        seen: list[str] | None = None,
        **extra: Any,
    ) -> Any:
        response = litellm.completion(
            model=MODEL,
            messages=messages,
            api_base=base_url,
            api_key="test-key",
            max_tokens=256,
            stream=stream,
            timeout=checks.timeout_for(fault),
            num_retries=retries,
            extra_headers=checks.fault_headers(fault),
            **extra,
        )
        if not stream:
            if seen is not None:
                seen.append(response.choices[0].message.content or "")
            return response
        chunks = []
        for chunk in response:
            chunks.append(chunk)
            if seen is not None:
                seen.append(chunk.choices[0].delta.content or "")
        return litellm.stream_chunk_builder(chunks, messages=messages)

    def ask(
        self, base_url: str, *, stream: bool, fault: str | None, retries: int, seen: list[str]
    ) -> Any:
        messages = [{"role": "user", "content": checks.question(stream)}]
        said = self._call(
            base_url, messages, stream=stream, fault=fault, retries=retries, seen=seen
        )
        return summary(said)

    def tool_loop(self, base_url: str, *, stream: bool) -> Any:
        messages: list[dict[str, Any]] = [{"role": "user", "content": checks.weather(stream)}]
        while len(messages) < 6:
            answer = self._call(base_url, messages, stream=stream, tools=[WEATHER_TOOL])
            said = answer.choices[0].message
            calls = said.tool_calls or []
            messages.append(
                {
                    "role": "assistant",
                    "content": said.content,
                    **({"tool_calls": [c.model_dump() for c in calls]} if calls else {}),
                }
            )
            if not calls:
                break
            for call in calls:
                city = yaml.safe_load(call.function.arguments)["city"]
                result = {"role": "tool", "tool_call_id": call.id, "content": get_weather(city)}
                messages.append(result)
        return messages


def summary(response: Any) -> dict[str, Any]:
    """What a LiteLLM response says, without its own id and creation time (LiteLLM makes
    both up on every call)."""
    choice = response.choices[0]
    calls = choice.message.tool_calls or []
    usage = response.usage
    return {
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "tool_calls": [(c.id, c.function.name, c.function.arguments) for c in calls],
        "usage": (usage.prompt_tokens, usage.completion_tokens),
        "model": response.model,
    }


#: What a miss (tapedeck's 404) is raised as.
ERROR_ON_MISS = "litellm.exceptions.NotFoundError"
#: What LiteLLM raises for each fault case (``None``: it answers), as docs/clients.md says.
SHOWN = {
    "ping": None,
    "error": "litellm.exceptions.MidStreamFallbackError",
    "overloaded": "litellm.exceptions.MidStreamFallbackError",
    "disconnect": "litellm.exceptions.MidStreamFallbackError",
    "truncate": "litellm.exceptions.MidStreamFallbackError",
    "status-529": None,
    "status-429": "litellm.exceptions.RateLimitError",
    "status-529-stream": "litellm.exceptions.InternalServerError",
    "latency": "litellm.exceptions.Timeout",
    "stall": "litellm.exceptions.MidStreamFallbackError",
    "garble": "litellm.exceptions.MidStreamFallbackError",
    "quota": "litellm.exceptions.RateLimitError",
}
FRAMEWORK = LiteLLM()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> checks.Recording:
    return checks.record(FRAMEWORK, tmp_path_factory.mktemp("litellm"))


def test_it_hangs_up_before_message_stop() -> None:
    """What the recording test below guards against: LiteLLM closes a stream once the
    ``message_delta`` has given it the stop reason, without reading ``message_stop``."""
    with StandIn(stop_delay_s=1.0) as api:  # long enough for a loaded machine to leave first
        answer = FRAMEWORK.ask(api.base_url, stream=True, fault=None, retries=0, seen=[])
    assert answer["content"] == checks.answer(True)
    assert list(api.left) == [1]
    assert api.left[1][-2:] == ["content_block_stop", "message_delta"]


def test_a_stream_it_hung_up_on_is_recorded(recording: checks.Recording) -> None:
    """LiteLLM leaves once it has the stop reason, before ``message_stop`` (the stand-in sends
    that a moment later): tapedeck reads the upstream on to its end all the same, and the
    stream is recorded whole."""
    assert recording.left_early == {}
    streamed = [
        interaction
        for name in recording.files
        for interaction in yaml.safe_load((recording.cassettes / name).read_text())["interactions"]
        if interaction["request"]["body"].get("stream")
    ]
    asked = sorted(str(i["request"]["body"]["messages"][0]["content"]) for i in streamed)
    assert len(streamed) == 3, asked  # the streamed ask, and the streamed tool loop's two calls
    for interaction in streamed:
        names = [event["event"] for event in interaction["response"]["events"]]
        assert names[-2:] == ["message_delta", "message_stop"]


@pytest.fixture(scope="module")
def sides(recording: checks.Recording) -> Iterator[checks.Sides]:
    with checks.both_sides(recording.cassettes) as sides:
        yield sides


def test_records_then_replays_with_the_upstream_gone(recording: checks.Recording) -> None:
    live = recording.live
    assert live["ask-json"]["content"] == checks.answer(False)
    assert live["ask-stream"]["content"] == checks.answer(True)
    for kind in ("json", "stream"):
        loop = live[f"tools-{kind}"]
        assert [m["role"] for m in loop] == ["user", "assistant", "tool", "assistant"]
        assert loop[1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
        assert loop[3]["content"] == "Done: Paris: 18°C and sunny"
    assert len(recording.files) == 6, recording.files
    assert checks.replay(FRAMEWORK, recording) == live


def test_replays_on_another_machine_and_day(recording: checks.Recording) -> None:
    checks.check_replayed_elsewhere("test_litellm", recording)


def test_a_miss_shows_tapedecks_explanation(recording: checks.Recording, tmp_path: Path) -> None:
    checks.check_miss(FRAMEWORK, recording, tmp_path, ERROR_ON_MISS)


@pytest.mark.parametrize("case", checks.FAULTS, ids=lambda c: c.name)
def test_fault(case: checks.FaultCase, sides: checks.Sides) -> None:
    checks.check_fault(FRAMEWORK, sides, case, "LiteLLM", SHOWN[case.name])
