"""Quotas through the real server and the Python SDK: 429s and ``retry-after`` as the API sends
them, rate-limit headers that count down request by request and token by token, the clock a
test moves itself, where quotas come from and where they apply, live answers, request ids.

The arithmetic is table-tested in test_quota_logic.py; what both SDKs show is in the
conformance table (tests/conformance/cases.json, ``fault/quota-*``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import CASSETTES, HELLO, LogLines, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from tapedeck.config import Mode
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import parse_faults

REQUEST_ID = re.compile(r"req_011C[0-9A-Za-z]{20}")
TOOL_USE = {  # the shipped streaming/tool-use cassette: 472 input tokens, 89 output
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "tools": [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    }
                },
                "required": ["location"],
            },
        }
    ],
    "tool_choice": {"type": "any"},
    "messages": [{"role": "user", "content": "What is the weather like in San Francisco?"}],
}


def clock(server: ServerThread, test_id: str | None, method: str = "POST", **body: Any) -> Any:
    headers = {"x-tapedeck-test-id": test_id} if test_id else {}
    url = f"{server.base_url}/_tapedeck/clock"
    response = httpx.request(method, url, headers=headers, json=body if body else None)
    return response


def limited(server: ServerThread, test_id: str, fault: str | None, **kwargs: Any) -> Any:
    headers = {"x-tapedeck-test-id": test_id, **kwargs.pop("default_headers", {})}
    return sdk(server, fault, default_headers=headers, **kwargs)


def remaining(headers: Any, family: str = "requests") -> int:
    return int(headers[f"anthropic-ratelimit-{family}-remaining"])


@pytest.fixture
def test_id(request: pytest.FixtureRequest, server: ServerThread) -> Iterator[str]:
    """A test id of this test's own on the shared server, reset after."""
    name = request.node.name
    yield name
    httpx.post(f"{server.base_url}/_tapedeck/reset", headers={"x-tapedeck-test-id": name})


# --- the scenario ---------------------------------------------------------------------


def test_sixty_requests_under_fifty_a_minute(server: ServerThread, test_id: str) -> None:
    assert clock(server, test_id).json()["clock"] == "stopped"
    left, refused = [], []
    with limited(server, test_id, "quota:requests=50/60s") as client:
        for _ in range(60):
            try:
                response = client.messages.with_raw_response.create(**HELLO)
            except anthropic.RateLimitError as exc:
                refused.append(exc)
            else:
                left.append(remaining(response.headers))
                assert response.parse().content[0].text == "Hello!"
        assert left == list(range(49, -1, -1))  # one fewer per request
        assert len(refused) == 10
        for exc in refused:
            headers = exc.response.headers
            assert headers["retry-after"] == "2"  # one request refills in 1.2 s
            assert remaining(headers) == 0
            assert headers["anthropic-ratelimit-requests-limit"] == "50"
            assert headers["x-tapedeck-faults"] == "quota:requests=50/60s"
            assert exc.body == {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "This request would exceed your organization's rate limit of 50 "
                    "requests per minute (org: tapedeck, model: claude-sonnet-4-5). For "
                    "details, refer to: https://docs.claude.com/en/api/rate-limits. You can "
                    "see the response headers for current usage. Please reduce the prompt "
                    "length or the maximum tokens requested, or try again later. You may also "
                    "contact sales at https://claude.com/contact-sales to discuss your options "
                    "for a rate limit increase.",
                },
                "request_id": headers["request-id"],
            }
            assert REQUEST_ID.fullmatch(headers["request-id"])
        assert len({exc.response.headers["request-id"] for exc in refused}) == 10

        clock(server, test_id, advance_s=1)  # not yet: 0.83 of a request has refilled
        with pytest.raises(anthropic.RateLimitError) as early:
            client.messages.create(**HELLO)
        assert early.value.response.headers["retry-after"] == "1"
        clock(server, test_id, advance_s=1)  # the retry-after, in all: the next goes through
        response = client.messages.with_raw_response.create(**HELLO)
        assert remaining(response.headers) == 0
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(**HELLO)


def test_reset_dates_are_on_the_tests_clock(server: ServerThread, test_id: str) -> None:
    now = clock(server, test_id, advance_s=0).json()["epoch_s"]
    with limited(server, test_id, "quota:requests=50/60s,output_tokens=300/60s") as client:
        headers = client.messages.with_raw_response.create(**HELLO).headers
    # Full again after 1.2 s (one request) and 3 s (15 of 300 tokens), rounded up.
    requests_reset = headers["anthropic-ratelimit-requests-reset"]
    assert requests_reset == _rfc3339(now + 1.2)
    assert headers["anthropic-ratelimit-output-tokens-reset"] == _rfc3339(now + 3)
    assert headers["anthropic-ratelimit-tokens-reset"] == _rfc3339(now + 3)


def _rfc3339(at: float) -> str:
    from datetime import UTC, datetime
    from math import ceil

    return datetime.fromtimestamp(ceil(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- tokens -----------------------------------------------------------------------------------


def test_token_limits_fall_by_what_each_answer_reports(server: ServerThread, test_id: str) -> None:
    clock(server, test_id)
    spec = "quota:requests=100/60s,input_tokens=2000/60s,output_tokens=1200/60s"
    seen = []
    with limited(server, test_id, spec) as client:
        for body, stream in [(HELLO, True), (HELLO, False), (TOOL_USE, True), (TOOL_USE, False)]:
            if stream:
                with client.messages.stream(**body) as events:
                    events.until_done()
                    headers = events.response.headers
            else:
                headers = client.messages.with_raw_response.create(**body).headers
            seen.append(
                [remaining(headers, f) for f in ("requests", "input-tokens", "output-tokens")]
                + [int(headers["anthropic-ratelimit-tokens-limit"]), remaining(headers, "tokens")]
            )
    assert seen == [
        [99, 1975, 1185, 3200, 3160],  # hello: 25 in, 15 out, streamed
        [98, 1950, 1170, 3200, 3120],  # the same answer as JSON
        [97, 1478, 1081, 3200, 2559],  # tool-use: 472 in, 89 out
        [96, 1006, 992, 3200, 1998],
    ]


def test_output_tokens_are_judged_on_max_tokens(server: ServerThread, test_id: str) -> None:
    """As the API estimates them: a request needs its max_tokens left, and is charged what its
    answer reports."""
    clock(server, test_id)
    with limited(server, test_id, "quota:output_tokens=1200/60s") as client:
        for left in (1111, 1022):  # tool-use: max_tokens 1024, 89 used
            headers = client.messages.with_raw_response.create(**TOOL_USE).headers
            assert remaining(headers, "output-tokens") == left
        with pytest.raises(anthropic.RateLimitError) as caught:  # 1022 left, 1024 needed
            client.messages.create(**TOOL_USE)
        assert "rate limit of 1,200 output tokens per minute" in caught.value.message
        assert caught.value.response.headers["retry-after"] == "1"  # 2 tokens at 20 a second
        assert remaining(caught.value.response.headers, "output-tokens") == 1022
        hello = client.messages.with_raw_response.create(**HELLO)  # max_tokens 256 fits
        assert remaining(hello.headers, "output-tokens") == 1007
        clock(server, test_id, advance_s=1)
        assert (
            remaining(client.messages.with_raw_response.create(**TOOL_USE).headers, "output-tokens")
            == 938
        )


def test_a_request_the_tokens_left_cannot_take_is_refused(
    server: ServerThread, test_id: str
) -> None:
    clock(server, test_id)
    with limited(server, test_id, "quota:tokens=600/60s") as client:
        for _ in range(8):  # each needs 25 in + 256 (max_tokens) out = 281, and uses 40
            client.messages.create(**HELLO)
        with pytest.raises(anthropic.RateLimitError, match="rate limit of 600 tokens per minute"):
            client.messages.create(**HELLO)  # 280 left
        clock(server, test_id, advance_s=1)  # 1 more needed: 10 refill in a second
        headers = client.messages.with_raw_response.create(**HELLO).headers
        assert remaining(headers, "tokens") == 250


def test_a_request_over_the_whole_limit_is_not_retried(server: ServerThread, test_id: str) -> None:
    with (
        limited(server, test_id, "quota:input_tokens=100/60s", max_retries=2) as client,
        pytest.raises(anthropic.RateLimitError) as caught,
    ):
        client.messages.with_raw_response.create(**TOOL_USE)
    headers = caught.value.response.headers
    assert "retry-after" not in headers
    assert headers["x-should-retry"] == "false"
    assert remaining(headers, "input-tokens") == 100
    assert "rate limit of 100 input tokens per minute" in caught.value.message


# --- the SDK's own retries ---------------------------------------------------------------------
# That each SDK waits the retry-after and its retry goes through, on the server's clock, is the
# conformance case fault/quota-retried/create (both SDKs).


@pytest.mark.anyio
async def test_the_async_sdk_sees_the_same_429(server: ServerThread, test_id: str) -> None:
    clock(server, test_id)
    headers = {"x-tapedeck-test-id": test_id, "x-tapedeck-fault": "quota:requests=1/60s"}
    async with anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key="k", max_retries=0, default_headers=headers
    ) as client:
        await client.messages.create(**HELLO)
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(**HELLO)
    assert caught.value.response.headers["retry-after"] == "60"


# --- where quotas come from and where they apply ----------------------------------------------


def test_a_server_wide_quota_keeps_buckets_per_test_id(make_server: MakeServer) -> None:
    faults = parse_faults("quota:requests=1/60s")
    with make_server(CASSETTES, faults=faults) as server:
        for test_id in ("a", "b"):
            clock(server, test_id)
            with limited(server, test_id, None) as client:
                client.messages.create(**HELLO)
                with pytest.raises(anthropic.RateLimitError):
                    client.messages.create(**HELLO)
        with limited(server, "a", "none") as client:  # a request's own header wins
            assert "anthropic-ratelimit-requests-limit" not in (
                client.messages.with_raw_response.create(**HELLO).headers
            )
        httpx.post(f"{server.base_url}/_tapedeck/reset", headers={"x-tapedeck-test-id": "a"})
        with limited(server, "a", None) as client:  # reset refills a's quota only
            client.messages.create(**HELLO)
        with limited(server, "b", None) as client, pytest.raises(anthropic.RateLimitError):
            client.messages.create(**HELLO)


def test_a_quota_through_the_admin_api(server: ServerThread, test_id: str) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    scope = {"x-tapedeck-test-id": test_id}
    put = httpx.put(admin, json={"faults": "quota:requests=2/60s"}, headers=scope)
    assert put.json() == {"status": "ok", "scope": test_id, "faults": "quota:requests=2/60s"}
    clock(server, test_id)
    try:
        with limited(server, test_id, None) as client:
            assert [
                remaining(client.messages.with_raw_response.create(**HELLO).headers)
                for _ in range(2)
            ] == [1, 0]
            with pytest.raises(anthropic.RateLimitError):
                client.messages.create(**HELLO)
            httpx.put(admin, json={"faults": "quota:requests=2/60s"}, headers=scope)
            client.messages.create(**HELLO)  # a PUT restarts the scope's quotas
    finally:
        httpx.delete(admin, headers=scope)
    with limited(server, "someone else", None) as client:
        headers = client.messages.with_raw_response.create(**HELLO).headers
    assert not [k for k in headers if k.startswith("anthropic-ratelimit-")]


LIMITED = """\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body: {model: m, max_tokens: 8, messages: [{role: user, content: hi}]}
    response:
      status: 200
      headers:
        request-id: req_011CdJimMSgGc81HLFxAA3J6
        anthropic-ratelimit-requests-limit: "4000"
        anthropic-ratelimit-requests-remaining: "3999"
        anthropic-ratelimit-tokens-remaining: "400000"
      body: {type: message, content: [], usage: {input_tokens: 3, output_tokens: 1}}
  - request:
      method: POST
      path: /v1/messages/count_tokens
      body: {model: m, messages: [{role: user, content: hi}]}
    response:
      status: 200
      body: {input_tokens: 3}
"""
HI = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def recorded_limits(tmp_path: Path, make_server: MakeServer) -> Iterator[ServerThread]:
    """A server over a cassette whose answer has rate-limit headers of its own."""
    (tmp_path / "limited.yaml").write_text(LIMITED)
    with make_server(tmp_path) as server:
        yield server


def test_recorded_ratelimit_headers_replay_unless_a_quota_is_set(
    recorded_limits: ServerThread,
) -> None:
    url = f"{recorded_limits.base_url}/v1/messages"
    plain = httpx.post(url, json=HI)
    assert plain.headers.get_list("anthropic-ratelimit-requests-remaining") == ["3999"]
    assert plain.headers.get_list("anthropic-ratelimit-tokens-remaining") == ["400000"]
    limited_response = httpx.post(url, json=HI, headers={"x-tapedeck-fault": "quota:requests=10/m"})
    assert limited_response.headers.get_list("anthropic-ratelimit-requests-remaining") == ["9"]
    assert limited_response.headers.get_list("anthropic-ratelimit-requests-limit") == ["10"]
    assert "anthropic-ratelimit-tokens-remaining" not in limited_response.headers
    assert limited_response.headers["request-id"] == "req_011CdJimMSgGc81HLFxAA3J6"
    again = httpx.post(url, json=HI)  # the kept plan still has the recorded ones
    assert again.headers.get_list("anthropic-ratelimit-requests-remaining") == ["3999"]


def test_quotas_apply_to_messages_only(recorded_limits: ServerThread) -> None:
    base = recorded_limits.base_url
    headers = {"x-tapedeck-fault": "quota:requests=1/60s", "x-tapedeck-test-id": "only"}
    clock(recorded_limits, "only")
    count = {k: v for k, v in HI.items() if k != "max_tokens"}
    for _ in range(3):
        counted = httpx.post(f"{base}/v1/messages/count_tokens", json=count, headers=headers)
        assert counted.json() == {"input_tokens": 3}
        assert not [k for k in counted.headers if k.startswith("anthropic-ratelimit-")]
    answered = httpx.post(f"{base}/v1/messages", json=HI, headers=headers)
    assert answered.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_a_status_fault_under_a_quota_counts_the_request(
    server: ServerThread, test_id: str
) -> None:
    clock(server, test_id)
    spec = "quota:requests=5/60s; status:code=529,times=1"
    with limited(server, test_id, spec) as client:
        with pytest.raises(anthropic.OverloadedError) as caught:
            client.messages.create(**HELLO)
        headers = caught.value.response.headers
        assert remaining(headers) == 4
        assert headers["x-tapedeck-faults"] == "status:code=529,times=1"
        assert remaining(client.messages.with_raw_response.create(**HELLO).headers) == 3


@pytest.mark.parametrize("code", [429, 529, 500])
def test_status_faults_have_request_ids_like_the_apis(server: ServerThread, code: int) -> None:
    with sdk(server, f"status:code={code}") as client, pytest.raises(anthropic.APIStatusError) as c:
        client.messages.create(**HELLO)
    request_id = c.value.response.headers["request-id"]
    assert REQUEST_ID.fullmatch(request_id)
    assert c.value.body["request_id"] == request_id  # type: ignore[index]
    assert c.value.request_id == request_id


def test_tapedecks_own_errors_have_request_ids_like_the_apis(server: ServerThread) -> None:
    response = httpx.post(f"{server.base_url}/v1/messages", json={**HELLO, "max_tokens": 1})
    assert response.status_code == 404
    assert REQUEST_ID.fullmatch(response.headers["request-id"])
    assert response.json()["request_id"] == response.headers["request-id"]


def test_a_refusal_is_logged(server: ServerThread, test_id: str, tapedeck_log: LogLines) -> None:
    clock(server, test_id)
    with limited(server, test_id, "quota:requests=1/60s") as client:
        client.messages.create(**HELLO)
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(**HELLO)
    said = "quota: requests over quota:requests=1/60s"
    tapedeck_log.only(server)
    lines = tapedeck_log.wait_for(re.escape(said), count=2)
    assert lines[0] == f"fault on POST /v1/messages (streaming/hello): {said}"
    logged = rf"POST /v1/messages 429 streaming/hello {re.escape(said)} [\d.]+ms"
    assert re.fullmatch(logged, lines[1]), lines


# --- the clock endpoint -----------------------------------------------------------------------


def test_the_clock_endpoint(server: ServerThread, test_id: str) -> None:
    running = clock(server, test_id, "GET").json()
    assert (running["scope"], running["clock"]) == (test_id, "running")
    stopped = clock(server, test_id, advance_s=30).json()
    assert stopped["clock"] == "stopped"
    assert stopped["epoch_s"] == pytest.approx(running["epoch_s"] + 30, abs=5)
    assert clock(server, test_id, advance_s=0.5).json()["epoch_s"] == stopped["epoch_s"] + 0.5
    assert clock(server, test_id, "GET").json()["epoch_s"] == stopped["epoch_s"] + 0.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stopped["now"])
    assert clock(server, None, "GET").json()["clock"] == "running"  # the server's: untouched
    released = clock(server, test_id, "DELETE").json()
    assert (released["scope"], released["clock"]) == (test_id, "running")
    empty = httpx.post(f"{server.base_url}/_tapedeck/clock", headers={"x-tapedeck-test-id": "e"})
    assert empty.json()["clock"] == "stopped"  # no body: stopped where it is
    httpx.post(f"{server.base_url}/_tapedeck/reset", headers={"x-tapedeck-test-id": "e"})
    assert clock(server, "e", "GET").json()["clock"] == "running"


def test_the_server_clock(make_server: MakeServer) -> None:
    with make_server(CASSETTES) as server:
        stopped = clock(server, None, advance_s=60).json()
        assert (stopped["scope"], stopped["clock"]) == ("server", "stopped")
        assert clock(server, "any test", "GET").json()["epoch_s"] == stopped["epoch_s"]
        with limited(server, "any test", "quota:requests=1/60s") as client:
            client.messages.create(**HELLO)
            with pytest.raises(anthropic.RateLimitError):
                client.messages.create(**HELLO)
        assert clock(server, None, "DELETE").json()["clock"] == "running"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"advance_s": -1}, "advance_s -1"),
        ({"advance_s": "30"}, "advance_s '30'"),
        ({"advance_s": True}, "advance_s True"),
        ({"advance_s": None}, "advance_s None"),
        ({"advance": 30}, "unknown key 'advance'"),
        ({"advance_s": 1, "when": 2}, "unknown key 'when'"),
    ],
)
def test_the_clock_refuses_bad_bodies(server: ServerThread, body: Any, problem: str) -> None:
    response = clock(server, "bad clock", **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        f'tapedeck: {problem}: expected a body like {{"advance_s": 30}} (seconds >= 0 to move '
        "the clock ahead; {} or no body only stops it)"
    )
    assert clock(server, "bad clock", "GET").json()["clock"] == "running"


@pytest.mark.parametrize("raw", [b"Infinity", b'{"advance_s": Infinity}', b"[1]", b"{"])
def test_the_clock_refuses_what_is_not_a_number_of_seconds(
    server: ServerThread, raw: bytes
) -> None:
    response = httpx.post(f"{server.base_url}/_tapedeck/clock", content=raw)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert clock(server, None, "GET").json()["clock"] == "running"


def test_a_bad_quota_spec_in_a_header_is_refused(server: ServerThread) -> None:
    with sdk(server, "quota:requests=50") as client, pytest.raises(anthropic.BadRequestError) as c:
        client.messages.create(**HELLO)
    assert "requests must be LIMIT/WINDOW such as 50/60s, 20000/1m or 1000/1h, got '50'" in (
        c.value.message
    )


# --- live answers -----------------------------------------------------------------------------


def test_a_live_answers_usage_is_taken_when_it_ends(
    tmp_path: Path, make_server: MakeServer
) -> None:
    spec = "quota:requests=10/60s,input_tokens=100/60s,output_tokens=70/60s"
    with (
        FakeUpstream() as fake,
        make_server(tmp_path, mode=Mode.ALL, upstream=fake.base_url) as server,
    ):
        clock(server, "live")
        seen = []
        with limited(server, "live", spec) as client:
            for words, stream in [("one two three", True), ("four five", False)]:
                if stream:
                    with client.messages.stream(**ask(words)) as events:
                        assert events.get_final_text() == words
                        headers = events.response.headers
                else:
                    headers = client.messages.with_raw_response.create(**ask(words)).headers
                seen.append([remaining(headers, f) for f in ("requests", "output-tokens")])
                # The upstream's own rate-limit header is replaced by the quota's.
                assert headers.get_list("anthropic-ratelimit-requests-remaining") == [
                    str(seen[-1][0])
                ]
            # The headers go out before the answer: its max_tokens (64) taken as an estimate,
            # then given back but for what it used: 70 - 64, then 67 (3 words) - 64.
            assert seen == [[9, 6], [8, 3]]
            with client.messages.stream(**ask("six seven eight nine ten eleven")) as events:
                events.until_done()  # 65 left (2 words): 64 taken, then 6 used: 59
            with pytest.raises(anthropic.RateLimitError, match="70 output tokens per minute") as c:
                client.messages.create(**ask("twelve"))  # 59 left, 64 needed
            assert c.value.response.headers["retry-after"] == "5"  # 5 at 70 a minute: 4.3 s
            clock(server, "live", advance_s=5)
            client.messages.create(**ask("twelve"))
        assert fake.count == 4  # the refused request never reached the upstream
    recorded = "".join(p.read_text() for p in tmp_path.rglob("*.yaml"))
    assert "anthropic-ratelimit-requests-remaining: '99'" in recorded  # the upstream's, kept
    assert "anthropic-ratelimit-requests-remaining: '9'" not in recorded


def test_a_live_answer_the_client_leaves_is_charged_what_it_used(
    tmp_path: Path, make_server: MakeServer
) -> None:
    """The fake sends message_start (1 output token so far), then would stay silent for 30 s:
    the client leaves, and the estimate taken for its max_tokens (64) goes back but for 1."""
    with (
        FakeUpstream() as fake,
        make_server(tmp_path, mode=Mode.PASSTHROUGH, upstream=fake.base_url) as server,
    ):
        clock(server, "left")
        with limited(server, "left", "quota:output_tokens=70/60s") as client:
            stream = client.messages.create(**ask("hang on a moment"), stream=True)
            with stream:
                assert remaining(stream.response.headers, "output-tokens") == 6
                assert next(iter(stream)).type == "message_start"
            [seen] = fake.requests()
            assert fake.wait_ended(seen, timeout=1.0)
            headers = client.messages.with_raw_response.create(**ask("after leaving")).headers
        assert remaining(headers, "output-tokens") == 69 - 64  # 6 left had it kept the 64


def test_a_429_without_retry_after_leaves_the_reset_dates(
    server: ServerThread, test_id: str
) -> None:
    """retry_after=false: the 429 as the API once sent it (anthropic-sdk-typescript#357), for a
    client that works out its wait from the anthropic-ratelimit-*-reset dates."""
    from datetime import datetime

    now = clock(server, test_id).json()["epoch_s"]
    with limited(server, test_id, "quota:requests=2/60s,retry_after=false") as client:
        client.messages.create(**HELLO)
        client.messages.create(**HELLO)
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(**HELLO)
        headers = caught.value.response.headers
        assert "retry-after" not in headers
        assert "x-should-retry" not in headers
        assert remaining(headers) == 0
        reset = datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"])
        assert reset.timestamp() == math.ceil(now + 60)  # full a minute after the first
        clock(server, test_id, advance_s=30)  # one request back after 30 s
        client.messages.create(**HELLO)


def test_tapedecks_own_errors_count_nothing(server: ServerThread, test_id: str) -> None:
    """A request no cassette answers (a 404 here) never reaches the limits: no headers, and the
    next answered request is the first one counted."""
    clock(server, test_id)
    headers = {"x-tapedeck-test-id": test_id, "x-tapedeck-fault": "quota:requests=2/60s"}
    url = f"{server.base_url}/v1/messages"
    for _ in range(3):
        missed = httpx.post(url, json={**HELLO, "max_tokens": 1}, headers=headers)
        assert missed.status_code == 404
        assert not [k for k in missed.headers if k.startswith("anthropic-ratelimit-")]
    answered = httpx.post(url, json=HELLO, headers=headers)
    assert answered.headers["anthropic-ratelimit-requests-remaining"] == "1"
