"""LangChain (``langchain-anthropic``'s ``ChatAnthropic``) through tapedeck: recorded from the
stand-in API, replayed with it gone, and every fault kind compared with the stand-in failing
the same way (docs/clients.md#langchain).

``ChatAnthropic`` drives the ``anthropic`` SDK (``messages.with_raw_response.create``, the
SDK's SSE decoder, its retries); ``base_url=`` points it at tapedeck, ``default_headers=``
carries the fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import framework_checks as checks
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool

MODEL = "claude-sonnet-4-5"


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"{city}: 18°C and sunny"


class LangChain:
    """ChatAnthropic, as its users call it."""

    def chat(self, base_url: str, fault: str | None = None, retries: int = 0) -> ChatAnthropic:
        return ChatAnthropic(
            model=MODEL,
            base_url=base_url,
            api_key="test-key",
            max_tokens=256,
            max_retries=retries,
            timeout=checks.timeout_for(fault),
            default_headers=checks.fault_headers(fault),
        )

    def _call(self, llm: Any, messages: Any, stream: bool, seen: list[str]) -> BaseMessage:
        if not stream:
            answer: BaseMessage = llm.invoke(messages)
            seen.append(answer.text)
            return answer
        whole = None
        for chunk in llm.stream(messages):
            seen.append(chunk.text)
            whole = chunk if whole is None else whole + chunk
        assert whole is not None
        return whole

    def ask(
        self, base_url: str, *, stream: bool, fault: str | None, retries: int, seen: list[str]
    ) -> Any:
        llm = self.chat(base_url, fault, retries)
        return summary(self._call(llm, checks.question(stream), stream, seen))

    def tool_loop(self, base_url: str, *, stream: bool) -> Any:
        llm = self.chat(base_url).bind_tools([get_weather])
        messages: list[BaseMessage] = [HumanMessage(checks.weather(stream))]
        while len(messages) < 6:
            answer = self._call(llm, messages, stream, [])
            messages.append(answer)
            assert isinstance(answer, AIMessage)
            if not answer.tool_calls:
                break
            messages += [get_weather.invoke(call) for call in answer.tool_calls]
        return [summary(m) for m in messages]


def summary(message: BaseMessage) -> dict[str, Any]:
    """What a LangChain message says, as data."""
    said: dict[str, Any] = {"type": message.type, "content": message.content}
    if isinstance(
        message, AIMessage
    ):  # its id is LangChain's own run id: the API's is in the metadata
        said["tool_calls"] = message.tool_calls
        said["usage"] = message.usage_metadata
        said["metadata"] = message.response_metadata
    else:
        said["id"] = message.id
    return said


#: What a miss (tapedeck's 404) is raised as.
ERROR_ON_MISS = "langchain_anthropic.chat_models.AnthropicModelNotFoundError"
#: What LangChain raises for each fault case (``None``: it answers), as docs/clients.md says.
SHOWN = {
    "ping": None,
    "error": "anthropic.APIStatusError",
    "overloaded": "anthropic.APIStatusError",
    "disconnect": "langchain_anthropic.chat_models.AnthropicConnectionError",
    "truncate": None,
    "status-529": None,
    "status-429": "langchain_anthropic.chat_models.AnthropicRateLimitError",
    "status-529-stream": "langchain_anthropic.chat_models.AnthropicOverloadedError",
    "latency": "langchain_anthropic.chat_models.AnthropicTimeoutError",
    "stall": "langchain_anthropic.chat_models.AnthropicTimeoutError",
    "garble": "json.decoder.JSONDecodeError",
    "quota": "langchain_anthropic.chat_models.AnthropicRateLimitError",
}
FRAMEWORK = LangChain()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> checks.Recording:
    return checks.record(FRAMEWORK, tmp_path_factory.mktemp("langchain"))


@pytest.fixture(scope="module")
def sides(recording: checks.Recording) -> Iterator[checks.Sides]:
    with checks.both_sides(recording.cassettes) as sides:
        yield sides


def test_records_then_replays_with_the_upstream_gone(recording: checks.Recording) -> None:
    live = recording.live
    assert live["ask-json"]["content"] == checks.answer(False)
    assert live["ask-json"]["metadata"]["id"] == "msg_standin_0001"
    assert live["ask-stream"]["content"] == checks.answer(True)
    tools = live["tools-json"]
    assert [m["type"] for m in tools] == ["human", "ai", "tool", "ai"]
    assert tools[1]["tool_calls"][0]["args"] == {"city": "Paris"}
    assert tools[3]["content"] == "Done: Paris: 18°C and sunny"
    streamed = live["tools-stream"]
    assert [m["type"] for m in streamed] == ["human", "AIMessageChunk", "tool", "AIMessageChunk"]
    assert streamed[1]["tool_calls"][0]["args"] == {"city": "Paris"}
    assert len(recording.files) == 6, recording.files  # 2 asks, 2 tool loops of 2 requests
    assert checks.replay(FRAMEWORK, recording) == live


def test_replays_on_another_machine_and_day(recording: checks.Recording) -> None:
    checks.check_replayed_elsewhere("test_langchain", recording)


def test_a_miss_shows_tapedecks_explanation(recording: checks.Recording, tmp_path: Path) -> None:
    checks.check_miss(FRAMEWORK, recording, tmp_path, ERROR_ON_MISS)


@pytest.mark.parametrize("case", checks.FAULTS, ids=lambda c: c.name)
def test_fault(case: checks.FaultCase, sides: checks.Sides) -> None:
    checks.check_fault(FRAMEWORK, sides, case, "LangChain", SHOWN[case.name])
