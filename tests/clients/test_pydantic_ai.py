"""pydantic-ai (an ``Agent`` on ``AnthropicModel``) through tapedeck: recorded from the stand-in
API, replayed with it gone, and every fault kind compared with the stand-in failing the same
way (docs/clients.md#pydantic-ai).

``AnthropicModel`` drives the ``anthropic`` SDK's ``AsyncAnthropic`` (``beta.messages.create``,
the SDK's SSE decoder and retries, an ``httpx2`` client of pydantic-ai's own);
``AnthropicProvider(base_url=...)`` points it at tapedeck, ``ModelSettings``'
``extra_headers`` carries the fault, ``timeout`` and ``max_retries`` go to the SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import Any

import framework_checks as checks
import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    AgentStreamEvent,
    ModelMessage,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.settings import ModelSettings

#: A model pydantic-ai does not warn about (it warns for retired ones, and warnings fail tests).
MODEL = "claude-sonnet-5-5"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"{city}: 18°C and sunny"


class PydanticAI:
    """An ``Agent``, as its users run it."""

    def agent(
        self, base_url: str, fault: str | None = None, retries: int = 0, tools: bool = False
    ) -> Agent[None, str]:
        settings = ModelSettings(
            max_tokens=256, timeout=checks.timeout_for(fault), max_retries=retries
        )
        if fault:
            settings["extra_headers"] = checks.fault_headers(fault)
        provider = AnthropicProvider(base_url=base_url, api_key="test-key")
        agent = Agent(AnthropicModel(MODEL, provider=provider), model_settings=settings)
        if tools:
            agent.tool_plain(get_weather)
        return agent

    def ask(
        self, base_url: str, *, stream: bool, fault: str | None, retries: int, seen: list[str]
    ) -> Any:
        agent = self.agent(base_url, fault, retries)

        async def run() -> list[ModelMessage]:
            async with agent:  # closes the provider's HTTP client
                if not stream:
                    result = await agent.run(checks.question(False))
                    seen.append(result.output)
                    return result.all_messages()
                async with agent.run_stream(checks.question(True)) as streamed:
                    async for text in streamed.stream_text(delta=True):
                        seen.append(text)
                    return streamed.all_messages()

        return summary(asyncio.run(run()))

    def tool_loop(self, base_url: str, *, stream: bool) -> Any:
        agent = self.agent(base_url, tools=True)
        texts: list[str] = []

        async def handler(_: Any, events: AsyncIterable[AgentStreamEvent]) -> None:
            async for event in events:  # with a handler, each model request streams
                if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                    texts.append(event.part.content)
                elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                    texts.append(event.delta.content_delta)

        async def run() -> list[ModelMessage]:
            async with agent:
                if not stream:
                    return (await agent.run(checks.weather(False))).all_messages()
                result = await agent.run(checks.weather(True), event_stream_handler=handler)
                return result.all_messages()

        messages = asyncio.run(run())
        if stream:
            assert "".join(texts) == "Let me look.Done: Paris: 18°C and sunny"
        return summary(messages)


def summary(messages: list[ModelMessage]) -> list[Any]:
    """What a run's messages say, without what pydantic-ai makes up each run (timestamps, run
    and conversation ids) and the provider's URL (tapedeck's port)."""
    said: list[Any] = []
    for message in messages:
        parts = [
            {
                k: v
                for k, v in vars(part).items()
                if k in ("part_kind", "content", "tool_name", "args", "tool_call_id")
            }
            for part in message.parts
        ]
        if isinstance(message, ModelResponse):
            usage = (message.usage.input_tokens, message.usage.output_tokens)
            said.append(
                (
                    "response",
                    parts,
                    message.provider_response_id,
                    message.finish_reason,
                    usage,
                    message.model_name,
                )
            )
        else:
            said.append(("request", parts))
    return said


#: What a miss (tapedeck's 404) is raised as.
ERROR_ON_MISS = "pydantic_ai.exceptions.ModelNotFoundError"
#: What pydantic-ai raises for each fault case (``None``: it answers), as docs/clients.md says.
SHOWN = {
    "ping": None,
    "error": "pydantic_ai.exceptions.ModelServerError",
    "overloaded": "pydantic_ai.exceptions.ModelOverloadedError",
    "disconnect": "pydantic_ai.exceptions.ModelConnectionError",
    "truncate": None,
    "status-529": None,
    "status-429": "pydantic_ai.exceptions.ModelRateLimitError",
    "status-529-stream": "pydantic_ai.exceptions.ModelOverloadedError",
    "latency": "pydantic_ai.exceptions.ModelTimeoutError",
    "stall": "pydantic_ai.exceptions.ModelTimeoutError",
    "garble": "pydantic_ai.exceptions.ModelAPIError",
    "quota": "pydantic_ai.exceptions.ModelRateLimitError",
}
FRAMEWORK = PydanticAI()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> checks.Recording:
    return checks.record(FRAMEWORK, tmp_path_factory.mktemp("pydantic-ai"))


@pytest.fixture(scope="module")
def sides(recording: checks.Recording) -> Iterator[checks.Sides]:
    with checks.both_sides(recording.cassettes) as sides:
        yield sides


def test_records_then_replays_with_the_upstream_gone(recording: checks.Recording) -> None:
    live = recording.live
    assert live["ask-json"][-1][1] == [{"part_kind": "text", "content": checks.answer(False)}]
    assert live["ask-stream"][-1][1] == [{"part_kind": "text", "content": checks.answer(True)}]
    for kind in ("json", "stream"):
        loop = live[f"tools-{kind}"]
        assert [m[0] for m in loop] == ["request", "response", "request", "response"]
        call = loop[1][1][1]
        assert (call["tool_name"], call["tool_call_id"]) == ("get_weather", "toolu_standin_1")
        assert loop[3][1] == [{"part_kind": "text", "content": "Done: Paris: 18°C and sunny"}]
    assert len(recording.files) == 6, recording.files
    assert checks.replay(FRAMEWORK, recording) == live


def test_replays_on_another_machine_and_day(recording: checks.Recording) -> None:
    checks.check_replayed_elsewhere("test_pydantic_ai", recording)


def test_a_miss_shows_tapedecks_explanation(recording: checks.Recording, tmp_path: Path) -> None:
    checks.check_miss(FRAMEWORK, recording, tmp_path, ERROR_ON_MISS)


@pytest.mark.parametrize("case", checks.FAULTS, ids=lambda c: c.name)
def test_fault(case: checks.FaultCase, sides: checks.Sides) -> None:
    checks.check_fault(FRAMEWORK, sides, case, "pydantic-ai", SHOWN[case.name])
