"""Every platform client of the Python SDK (but Bedrock's) replays the shipped cassettes
through its front door (docs/platforms.md), misses as the API's 404, and sees faults as
the first-party client does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from conftest import CASSETTES, HELLO, running, sdk
from platform_clients import PLATFORMS, Platform
from tapedeck.server.runner import ServerThread

#: The request of the shipped streaming/tool-use cassette.
TOOL_USE: dict[str, Any] = yaml.safe_load(
    (CASSETTES / "streaming" / "tool-use.yaml").read_text(encoding="utf-8")
)["interactions"][0]["request"]["body"]


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    with running() as server:
        yield server


@pytest.fixture(params=PLATFORMS, ids=[p.name for p in PLATFORMS])
def platform(request: pytest.FixtureRequest) -> Platform:
    return request.param  # type: ignore[no-any-return]


def journal(server: ServerThread) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{server.base_url}/_tapedeck/journal").json()[
        "entries"
    ]
    return entries


def test_hello_as_json_and_streamed(served: ServerThread, platform: Platform) -> None:
    with platform.client(served.base_url) as client:
        messages = platform.messages(client)
        made = messages.create(**HELLO)
        with messages.stream(**HELLO) as stream:
            text = stream.get_final_text()
    assert made.content[0].text == "Hello!"
    assert made.model == "claude-sonnet-4-5-20250929"
    assert text == "Hello!"
    last = journal(served)[-2:]
    assert [(e["path"], e["cassette"], e["stream"]) for e in last] == [
        ("/v1/messages", "streaming/hello", False),
        ("/v1/messages", "streaming/hello", True),
    ]
    assert last[1]["source"] == "cassette"


def test_tool_use_streamed(served: ServerThread, platform: Platform) -> None:
    body = {k: v for k, v in TOOL_USE.items() if k != "stream"}
    with (
        platform.client(served.base_url) as client,
        platform.messages(client).stream(**body) as stream,
    ):
        message = stream.get_final_message()
    [tool] = [b for b in message.content if b.type == "tool_use"]
    assert tool.name == "get_weather"
    assert tool.input == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert message.stop_reason == "tool_use"


def test_a_miss_is_the_apis_404(served: ServerThread, platform: Platform) -> None:
    with (
        platform.client(served.base_url) as client,
        pytest.raises(anthropic.NotFoundError) as caught,
    ):
        platform.messages(client).create(**{**HELLO, "max_tokens": 7})
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "no cassette matches POST /v1/messages" in caught.value.message
    assert "max_tokens: 7 != 256" in caught.value.message


def outcome(messages: Any, streamed: bool) -> tuple[str, int | None, str | None, str]:
    """What a call under a fault ends in: the exception's class, status, error type, and
    the text received before it."""
    got: list[str] = []
    try:
        if streamed:
            with messages.stream(**HELLO) as stream:
                got.extend(stream.text_stream)
        else:
            got.append(messages.create(**HELLO).content[0].text)
    except anthropic.APIError as exc:
        body = getattr(exc, "body", None)
        kind = body.get("error", {}).get("type") if isinstance(body, dict) else None
        return type(exc).__name__, getattr(exc, "status_code", None), kind, "".join(got)
    return "ok", None, None, "".join(got)


FAULTS = [
    ("error:after=3,type=overloaded_error", True),
    ("disconnect:after=4", True),
    ("status:code=529", False),
    ("status:code=529", True),
]


@pytest.mark.parametrize(("fault", "streamed"), FAULTS, ids=[f"{f}-{s}" for f, s in FAULTS])
def test_faults_reach_it_as_they_reach_the_first_party_client(
    served: ServerThread, platform: Platform, fault: str, streamed: bool
) -> None:
    with sdk(served, fault=fault) as first_party:
        expected = outcome(first_party.messages, streamed)
    with platform.client(served.base_url, fault=fault) as client:
        got = outcome(platform.messages(client), streamed)
    assert expected[0] != "ok"
    assert got == expected


ASYNC_CLIENTS = {
    "vertex": lambda base: anthropic.AsyncAnthropicVertex(
        base_url=base, region="us-east5", project_id="p", access_token="dummy", max_retries=0
    ),
    "foundry": lambda base: anthropic.AsyncAnthropicFoundry(
        base_url=base + "/anthropic/", api_key="dummy", max_retries=0
    ),
    "google-cloud": lambda base: anthropic.AsyncAnthropicGoogleCloud(
        base_url=f"{base}/v1/projects/p/locations/global/workspaces/w/invoke",
        project="p",
        location="global",
        workspace_id="w",
        skip_auth=True,
        max_retries=0,
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(ASYNC_CLIENTS))
async def test_the_async_clients_stream_too(served: ServerThread, name: str) -> None:
    async with (
        ASYNC_CLIENTS[name](served.base_url) as client,
        client.messages.stream(**HELLO) as stream,
    ):
        text = await stream.get_final_text()
    assert text == "Hello!"


def call(messages: Any, streamed: bool) -> None:
    if streamed:
        with messages.stream(**HELLO) as stream:
            stream.get_final_message()
    else:
        messages.create(**HELLO)


GOOGLE_ERRORS = [
    ("status:code=401", anthropic.AuthenticationError, "UNAUTHENTICATED", "Authentication error"),
    ("status:code=403", anthropic.PermissionDeniedError, "PERMISSION_DENIED", "Permission error"),
    ("status:code=429", anthropic.RateLimitError, "RESOURCE_EXHAUSTED", "Rate limited"),
    (
        "quota:input_tokens=10/60s",
        anthropic.RateLimitError,
        "RESOURCE_EXHAUSTED",
        "rate limit of 10",
    ),
]


@pytest.mark.parametrize(("fault", "raised", "code", "message"), GOOGLE_ERRORS)
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_vertex_answers_401_403_and_429_as_googles_front_end(
    served: ServerThread,
    fault: str,
    raised: type[Exception],
    code: str,
    message: str,
    streamed: bool,
) -> None:
    """Google authenticates, checks IAM and enforces quotas before Claude sees a Vertex
    request: those errors are Google's (docs/platforms.md, "Faults on Vertex")."""
    vertex = next(p for p in PLATFORMS if p.name == "vertex-v1")
    with vertex.client(served.base_url, fault=fault) as client, pytest.raises(raised) as caught:
        call(client.messages, streamed)
    error = caught.value
    status = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429}[code]
    body = error.body  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert body["error"]["code"] == status
    assert body["error"]["status"] == code
    assert message in body["error"]["message"]
    assert error.response.headers["content-type"] == "application/json; charset=UTF-8"  # type: ignore[attr-defined]


def test_vertex_passes_claudes_own_errors_through(served: ServerThread) -> None:
    """A 529 (Claude overloaded) is Claude's error, which Vertex passes on as it is."""
    vertex = next(p for p in PLATFORMS if p.name == "vertex-v1")
    with (
        vertex.client(served.base_url, fault="status:code=529") as client,
        pytest.raises(anthropic.OverloadedError) as caught,
    ):
        client.messages.create(**HELLO)
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
