"""Fault injection as the official SDK sees it, over a real socket.

Each fault kind is checked for the exact client-visible outcome: which exception the SDK
raises, after how many events, and what the raw bytes or raw events were. Then where faults
come from (the request header, the admin API scoped by test id, server-wide settings), the
``times``/``p``/``seed`` gates, non-streaming requests, and faults under recorded timing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from conftest import LogLines, MakeServer
from tapedeck.cassette.load import load_cassette
from tapedeck.config import Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.faults import parse_faults
from tapedeck.shaping.timing import Timing
from tapedeck.source.sequences import SequenceEnd
from tapedeck.wire.sse import encode_event

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "cassettes"
HELLO = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Hello"}],
}
#: streaming/hello's source events, in order (index 2 is a recorded ping).
HELLO_EVENTS = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]
HELLO_ENCODED = [
    encode_event(e.event, e.data)
    for e in load_cassette(SHIPPED / "streaming" / "hello.yaml", "streaming/hello")
    .interactions[0]
    .response.events
    or ()
]
PING_DATA = '{"type":"ping"}'
LONG = httpx2.Timeout(10)
SHORT_READ = httpx2.Timeout(5, read=0.2)


def sdk(server: ServerThread, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=server.base_url, api_key="test-key", **kwargs)


def fault(spec: str, **more: str) -> dict[str, str]:
    return {"x-tapedeck-fault": spec, **more}


def delivered(after: int) -> list[str]:
    """What ``messages.create(stream=True)`` yields of the first ``after`` source events."""
    return [e for e in HELLO_EVENTS[:after] if e != "ping"]


def drain(stream: Any, into: list[str]) -> None:
    """Iterate an SDK stream (or stream manager), recording each event's type."""
    with stream as events:
        for event in events:
            into.append(event.type)


async def adrain(stream: Any, into: list[str]) -> None:
    async with stream as events:
        async for event in events:
            into.append(event.type)


def raw_events(client: anthropic.Anthropic, headers: dict[str, str], into: list[Any]) -> None:
    """The raw SSE events (pings and errors included) of a streamed hello, as (name, data)."""
    with client.messages.create(**HELLO, stream=True, extra_headers=headers) as stream:
        for sse in anthropic.Stream.raw_events(stream.response):
            into.append((sse.event, sse.data))


def timed_events(
    client: anthropic.Anthropic, body: dict[str, Any], headers: dict[str, str]
) -> list[tuple[str, float]]:
    """Raw events with their arrival times in seconds after the first one."""
    arrivals: list[tuple[str, float]] = []
    with client.messages.create(**body, extra_headers=headers) as stream:
        for sse in anthropic.Stream.raw_events(stream.response):
            arrivals.append((sse.event or "", time.perf_counter()))
    first = arrivals[0][1]
    return [(name, at - first) for name, at in arrivals]


def raw_body(server: ServerThread, headers: dict[str, str], into: bytearray) -> None:
    """The response body bytes of a streamed hello, read with plain httpx2."""
    with httpx2.stream(
        "POST",
        f"{server.base_url}/v1/messages",
        json={**HELLO, "stream": True},
        headers=headers,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            into.extend(chunk)


def data_of(encoded: bytes) -> str:
    """The ``data:`` text of one encoded event."""
    return next(
        line.removeprefix(b"data: ").decode()
        for line in encoded.split(b"\n")
        if line.startswith(b"data: ")
    )


#: One request log line per request that reached /v1/messages.
REQUEST_LINE = r"^POST /v1/messages (\d{3}|-) "


def statuses(lines: list[str]) -> list[str]:
    """The status of each request log line ("-" when no response started)."""
    return [line.split()[2] for line in lines]


# --- cassettes of our own -----------------------------------------------------------------------


def stream_cassette(content: str, events: list[tuple[str, int, str]], ttfb: int = 0) -> str:
    """A one-interaction streaming cassette; ``events`` are (name, at_ms, YAML flow data)."""
    lines = "".join(
        f"        - event: {name}\n          at_ms: {at}\n          data: {data}\n"
        for name, at, data in events
    )
    return f"""\
version: 1
interactions:
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        stream: true
        messages: [{{role: user, content: {content}}}]
    response:
      status: 200
      time_to_headers_ms: {ttfb}
      events:
{lines}"""


def message_events(text: str, at: list[int]) -> list[tuple[str, int, str]]:
    """A complete text message as six events at the offsets ``at``."""
    start = (
        "{type: message_start, message: {id: msg_t, type: message, role: assistant, "
        "content: [], model: m, stop_reason: null, stop_sequence: null, "
        "usage: {input_tokens: 1, output_tokens: 1}}}"
    )
    return list(
        zip(
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ],
            at,
            [
                start,
                '{type: content_block_start, index: 0, content_block: {type: text, text: ""}}',
                "{type: content_block_delta, index: 0, delta: {type: text_delta, "
                f'text: "{text}"}}}}',
                "{type: content_block_stop, index: 0}",
                "{type: message_delta, delta: {stop_reason: end_turn, stop_sequence: null}, "
                "usage: {output_tokens: 2}}",
                "{type: message_stop}",
            ],
            strict=True,
        )
    )


def plain_interaction(content: str, text: str) -> str:
    return f"""\
  - request:
      method: POST
      path: /v1/messages
      body:
        model: m
        max_tokens: 16
        messages: [{{role: user, content: {content}}}]
    response:
      status: 200
      headers: {{request-id: req_{text}}}
      body:
        id: msg_{text}
        type: message
        role: assistant
        model: m
        content: [{{type: text, text: {text}}}]
        stop_reason: end_turn
        stop_sequence: null
        usage: {{input_tokens: 1, output_tokens: 1}}
"""


def plain(content: str) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": content}]}


def streamed(content: str) -> dict[str, Any]:
    return {**plain(content), "stream": True}


@pytest.fixture(scope="module")
def deck_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-cassettes")
    (root / "hello.yaml").write_bytes((SHIPPED / "streaming" / "hello.yaml").read_bytes())
    (root / "plain.yaml").write_text(
        "version: 1\ninteractions:\n" + plain_interaction("plain", "plain-answer")
    )
    (root / "twice.yaml").write_text(
        "version: 1\ninteractions:\n"
        + plain_interaction("twice", "first")
        + plain_interaction("twice", "second")
    )
    # 300 ms of silence between the block start and the text
    (root / "gap.yaml").write_text(
        stream_cassette("gap", message_events("after the gap", [0, 0, 300, 300, 300, 300]))
    )
    (root / "paced.yaml").write_text(
        stream_cassette("paced", message_events("paced", [0, 50, 100, 150, 200, 200]))
    )
    return root


@pytest.fixture(scope="module")
def deck(deck_dir: Path) -> Iterator[ServerThread]:
    settings = Settings(cassettes=deck_dir, port=0, timing=Timing.parse("instant"))
    with ServerThread(settings) as server:
        yield server


# --- ping -------------------------------------------------------------------------------------

PING_EVERY_2 = [
    "message_start",
    "content_block_start",
    "ping*",
    "ping",
    "content_block_delta",
    "ping*",
    "content_block_delta",
    "content_block_stop",
    "ping*",
    "message_delta",
    "message_stop",
    "ping*",
]
PING_EVERY_3 = [
    "message_start",
    "content_block_start",
    "ping",
    "ping*",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "ping*",
    "message_delta",
    "message_stop",
]


@pytest.mark.parametrize(
    ("spec", "expected"), [("ping:every=2", PING_EVERY_2), ("ping:every=3", PING_EVERY_3)]
)
def test_ping_every_inserts_pings_after_every_n_source_events(
    client: anthropic.Anthropic, spec: str, expected: list[str]
) -> None:
    received: list[Any] = []
    raw_events(client, fault(spec), received)
    # "ping*" marks an injected ping: the recorded one counts as a source event
    assert [name for name, _ in received] == [e.rstrip("*") for e in expected]
    source = iter(HELLO_ENCODED)
    for (_, data), want in zip(received, expected, strict=True):
        assert data == (PING_DATA if want == "ping*" else data_of(next(source)))
    # the SDK skips pings: the same events and text as without the fault
    with client.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
        assert stream.response.headers["x-tapedeck-faults"] == spec
        types = [event.type for event in stream]
        message = stream.get_final_message()
    with client.messages.stream(**HELLO) as plain_stream:
        assert types == [event.type for event in plain_stream]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello!"
    assert message.stop_reason == "end_turn"


def test_ping_interval_fills_a_gap(deck: ServerThread) -> None:
    with sdk(deck, timeout=LONG) as c:
        arrivals = timed_events(
            c, streamed("gap"), {"x-tapedeck-timing": "recorded", **fault("ping:interval=100")}
        )
    names = [name for name, _ in arrivals]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    at_ms = [at * 1000 for _, at in arrivals]
    for got, want in zip(at_ms, [0, 0, 100, 200, 300, 300, 300, 300], strict=True):
        assert abs(got - want) < 40, at_ms


def test_ping_interval_keeps_a_stalled_stream_alive(deck: ServerThread) -> None:
    """Pings every 100 ms during a 600 ms stall: a 200 ms read timeout never fires."""
    spec = "stall:after=3,ms=600;ping:interval=100"
    with sdk(deck, timeout=SHORT_READ) as c:
        received: list[Any] = []
        raw_events(c, fault(spec), received)
        with c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
    names = [name for name, _ in received]
    assert names == [*HELLO_EVENTS[:3], *["ping"] * 5, *HELLO_EVENTS[3:]]


# --- error and overloaded -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "after", "error"),
    [
        ("error:after=3,type=api_error,message=boom", 3, {"type": "api_error", "message": "boom"}),
        ("error", 0, {"type": "overloaded_error", "message": "Overloaded"}),
        (
            "error:after=4,type=rate_limit_error",
            4,
            {"type": "rate_limit_error", "message": "Rate limited"},
        ),
        (
            "error:after=1,type=billing_error",
            1,
            {"type": "billing_error", "message": "Billing error"},
        ),
        ("overloaded:after=2", 2, {"type": "overloaded_error", "message": "Overloaded"}),
        ("overloaded:after=7", 7, {"type": "overloaded_error", "message": "Overloaded"}),
    ],
)
def test_error_event_after_n_source_events(
    client: anthropic.Anthropic, spec: str, after: int, error: dict[str, str]
) -> None:
    body = {"type": "error", "error": error}
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        drain(client.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert type(caught.value) is anthropic.APIStatusError  # not a subclass chosen by status
    assert received == delivered(after)
    assert caught.value.status_code == 200
    assert caught.value.body == body
    assert caught.value.type == error["type"]
    assert caught.value.api_message == error["message"]
    # on the wire: exactly `after` source events, the error event, then a clean end
    raw: list[Any] = []
    raw_events(client, fault(spec), raw)
    assert [name for name, _ in raw] == [*HELLO_EVENTS[:after], "error"]
    assert json.loads(raw[-1][1]) == body


def test_error_event_with_the_stream_helper(client: anthropic.Anthropic) -> None:
    received: list[str] = []
    spec = "error:after=4,type=api_error,message=Internal server error"
    with pytest.raises(anthropic.APIStatusError) as caught:
        drain(client.messages.stream(**HELLO, extra_headers=fault(spec)), received)
    assert received == ["message_start", "content_block_start", "content_block_delta", "text"]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": "Internal server error"},
    }


@pytest.mark.anyio
async def test_overloaded_async(async_client: anthropic.AsyncAnthropic) -> None:
    received: list[str] = []
    stream = await async_client.messages.create(
        **HELLO, stream=True, extra_headers=fault("overloaded:after=4")
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        await adrain(stream, received)
    assert received == delivered(4)
    assert caught.value.status_code == 200
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    helper: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await adrain(
            async_client.messages.stream(**HELLO, extra_headers=fault("overloaded:after=2")),
            helper,
        )
    assert helper == ["message_start", "content_block_start"]
    assert caught.value.type == "overloaded_error"


# --- disconnect -------------------------------------------------------------------------------


@pytest.mark.parametrize("after", [0, 3, 5, 7])
def test_disconnect_after_n_events(client: anthropic.Anthropic, after: int) -> None:
    spec = f"disconnect:after={after}"
    received: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError) as caught:
        drain(client.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert received == delivered(after)
    assert str(caught.value) == (
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )
    raw: list[Any] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        raw_events(client, fault(spec), raw)
    assert [name for name, _ in raw] == HELLO_EVENTS[:after]


@pytest.mark.parametrize(
    ("cut", "after"),
    [
        (len(HELLO_ENCODED[0]), 1),
        (len(HELLO_ENCODED[0]) + len(HELLO_ENCODED[1]) + 10, 2),
        (1, 0),
        (sum(len(e) for e in HELLO_ENCODED[:5]) - 1, 4),
    ],
)
def test_disconnect_after_bytes(
    server: ServerThread, client: anthropic.Anthropic, cut: int, after: int
) -> None:
    spec = f"disconnect:after_bytes={cut}"
    body = bytearray()
    with pytest.raises(httpx2.RemoteProtocolError):
        raw_body(server, fault(spec), body)
    assert bytes(body) == b"".join(HELLO_ENCODED)[:cut]
    received: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        drain(client.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert received == delivered(after)


def test_disconnect_after_bytes_counts_injected_pings(server: ServerThread) -> None:
    cut = 2 * len(HELLO_ENCODED[0])
    body = bytearray()
    with pytest.raises(httpx2.RemoteProtocolError):
        raw_body(server, fault(f"disconnect:after_bytes={cut};ping:every=1"), body)
    ping = f"event: ping\ndata: {PING_DATA}\n\n".encode()
    assert bytes(body) == b"".join(e + ping for e in HELLO_ENCODED)[:cut]


def test_disconnect_after_bytes_with_interval_pings(server: ServerThread) -> None:
    """The cut comes after N body bytes, pings included, whatever inserted them."""
    cut = len(HELLO_ENCODED[0]) + len(HELLO_ENCODED[1]) + 10
    body = bytearray()
    headers = fault(
        f"disconnect:after_bytes={cut};ping:interval=3", **{"x-tapedeck-timing": "fixed=10"}
    )
    with pytest.raises(httpx2.RemoteProtocolError):
        raw_body(server, headers, body)
    assert len(body) == cut, bytes(body)


@pytest.mark.anyio
async def test_disconnect_async(async_client: anthropic.AsyncAnthropic) -> None:
    received: list[str] = []
    stream = await async_client.messages.create(
        **HELLO, stream=True, extra_headers=fault("disconnect:after=4")
    )
    with pytest.raises(httpx2.RemoteProtocolError):
        await adrain(stream, received)
    assert received == delivered(4)
    helper: list[str] = []
    cut = len(HELLO_ENCODED[0]) + 5
    with pytest.raises(httpx2.RemoteProtocolError):
        await adrain(
            async_client.messages.stream(
                **HELLO, extra_headers=fault(f"disconnect:after_bytes={cut}")
            ),
            helper,
        )
    assert helper == ["message_start"]


# --- truncate ---------------------------------------------------------------------------------


def test_truncate_ends_cleanly_with_a_partial_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**HELLO, extra_headers=fault("truncate:after=5")) as stream:
        types = [event.type for event in stream]
        message = stream.get_final_message()
    assert types == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "text",
        "content_block_delta",
        "text",
    ]
    assert [(block.type, block.text) for block in message.content] == [("text", "Hello!")]  # type: ignore[union-attr]
    assert message.stop_reason is None
    raw: list[Any] = []
    raw_events(client, fault("truncate:after=5"), raw)  # no transport error: a clean end
    assert [name for name, _ in raw] == HELLO_EVENTS[:5]
    received: list[str] = []
    drain(
        client.messages.create(**HELLO, stream=True, extra_headers=fault("truncate:after=2")),
        received,
    )
    assert received == ["message_start", "content_block_start"]


# --- garble -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "garbled"), [(0, 0), (2, 3), (3, 3), (6, 6)])
def test_garble_breaks_the_json_of_one_event(
    client: anthropic.Anthropic, after: int, garbled: int
) -> None:
    """The first non-ping source event at or after ``after`` gets half its JSON."""
    spec = f"garble:after={after}"
    received: list[str] = []
    with pytest.raises(json.JSONDecodeError):
        drain(client.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert received == delivered(garbled)
    raw: list[Any] = []
    raw_events(client, fault(spec), raw)
    assert [name for name, _ in raw] == HELLO_EVENTS
    for i, (_, data) in enumerate(raw):
        original = data_of(HELLO_ENCODED[i])
        assert data == (original[: len(original) // 2] if i == garbled else original)


# --- status -----------------------------------------------------------------------------------


def test_status_529_body_and_headers(server: ServerThread) -> None:
    spec = "status:code=529,retry_after=2,retry_after_ms=1,should_retry=true"
    response = httpx2.post(
        f"{server.base_url}/v1/messages", json={**HELLO, "stream": True}, headers=fault(spec)
    )
    assert response.status_code == 529
    request_id = response.headers["request-id"]
    assert re.fullmatch(r"req_tapedeck_[0-9a-f]{24}", request_id)
    assert response.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": request_id,
    }
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "1"
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["x-tapedeck-faults"] == spec
    assert response.headers["x-tapedeck-source"] == "fault"
    assert response.headers["x-tapedeck-cassette"] == "streaming/hello"
    bare = httpx2.post(
        f"{server.base_url}/v1/messages", json={**HELLO, "stream": True}, headers=fault("status")
    )
    assert bare.status_code == 529
    assert "retry-after" not in bare.headers
    assert "retry-after-ms" not in bare.headers
    assert "x-should-retry" not in bare.headers


def test_status_529_twice_then_the_sdk_retry_succeeds(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    spec = "status:code=529,times=2,retry_after_ms=1"
    with make_server() as s, sdk(s, max_retries=2, default_headers=fault(spec)) as c:
        tapedeck_log.only(s)
        started = time.perf_counter()
        with c.messages.stream(**HELLO) as stream:
            assert stream.get_final_text() == "Hello!"
            assert stream.response.request.headers["x-stainless-retry-count"] == "2"
        assert time.perf_counter() - started < 1  # waited retry-after-ms, not the backoff
        lines = tapedeck_log.wait_for(REQUEST_LINE, 3)
        assert statuses(lines) == ["529", "529", "200"]
        assert (
            tapedeck_log.matching("^fault on ")
            == [f"fault on POST /v1/messages (streaming/hello): {spec}"] * 2
        )


def test_status_should_retry_false_is_not_retried(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    spec = "status:code=529,should_retry=false,retry_after_ms=1"
    with make_server() as s, sdk(s, max_retries=2) as c:
        tapedeck_log.only(s)
        with pytest.raises(anthropic.OverloadedError) as caught:
            c.messages.create(**HELLO, stream=True, extra_headers=fault(spec))
        assert caught.value.type == "overloaded_error"
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert statuses(tapedeck_log.wait_for(REQUEST_LINE, 1)) == ["529"]
        time.sleep(0.05)
        assert statuses(tapedeck_log.matching(REQUEST_LINE)) == ["529"]


@pytest.mark.parametrize(
    ("spec", "exception", "error_type", "message"),
    [
        ("status:code=429", anthropic.RateLimitError, "rate_limit_error", "Rate limited"),
        ("status", anthropic.OverloadedError, "overloaded_error", "Overloaded"),
        ("status:code=500", anthropic.InternalServerError, "api_error", "Internal server error"),
        ("status:code=504", anthropic.GatewayTimeoutError, "timeout_error", "Request timed out"),
        (
            "status:code=400",
            anthropic.BadRequestError,
            "invalid_request_error",
            "Invalid request error",
        ),
        (
            "status:code=401",
            anthropic.AuthenticationError,
            "authentication_error",
            "Authentication error",
        ),
        (
            "status:code=413",
            anthropic.RequestTooLargeError,
            "request_too_large",
            "Request too large",
        ),
        (
            "status:code=429,message=slow down",
            anthropic.RateLimitError,
            "rate_limit_error",
            "slow down",
        ),
    ],
)
def test_status_raises_the_sdk_exception_for_the_code(
    client: anthropic.Anthropic,
    spec: str,
    exception: type[anthropic.APIStatusError],
    error_type: str,
    message: str,
) -> None:
    with pytest.raises(exception) as caught:
        client.messages.create(**HELLO, stream=True, extra_headers=fault(spec))
    assert type(caught.value) is exception
    assert caught.value.body == {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": caught.value.request_id,
    }


def test_status_429_retried_by_the_sdk(make_server: MakeServer, tapedeck_log: LogLines) -> None:
    spec = "status:code=429,times=1,retry_after_ms=1"
    with make_server() as s, sdk(s, max_retries=1) as c:
        tapedeck_log.only(s)
        with c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
        assert statuses(tapedeck_log.wait_for(REQUEST_LINE, 2)) == ["429", "200"]


def test_status_on_a_request_that_matches_nothing_is_still_a_miss(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            **{**HELLO, "messages": [{"role": "user", "content": "no such cassette"}]},
            stream=True,
            extra_headers=fault("status:code=529"),
        )
    assert caught.value.type == "not_found_error"
    assert "x-tapedeck-faults" not in caught.value.response.headers


def test_status_fault_leaves_the_sequence_position_alone(
    make_server: MakeServer, deck_dir: Path
) -> None:
    """A retried request gets the answer the first attempt would have had."""
    with make_server(deck_dir) as s, sdk(s, max_retries=1) as c:
        first = c.messages.create(
            **plain("twice"), extra_headers=fault("status:code=529,times=1,retry_after_ms=1")
        )
        assert first.id == "msg_first"


def test_status_fault_does_not_use_up_a_sequence(make_server: MakeServer) -> None:
    """With ``sequence_end: error``, a one-interaction cassette still answers the retry."""
    spec = "status:code=529,times=1,retry_after_ms=1"
    with (
        make_server(sequence_end=SequenceEnd.ERROR) as s,
        sdk(s, max_retries=1) as c,
        c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream,
    ):
        assert stream.get_final_text() == "Hello!"


# --- latency and stall --------------------------------------------------------------------------


def test_latency_delays_the_headers(server: ServerThread) -> None:
    spec = "latency:ms=400"
    with sdk(server, timeout=SHORT_READ) as short, pytest.raises(anthropic.APITimeoutError):
        short.messages.create(**HELLO, stream=True, extra_headers=fault(spec))
    with sdk(server, timeout=LONG) as patient:
        started = time.perf_counter()
        with patient.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            headers_after = time.perf_counter() - started
            assert stream.response.headers["x-tapedeck-faults"] == spec
            assert stream.get_final_text() == "Hello!"
    assert 0.38 <= headers_after < 1.5


def test_latency_timeout_is_retried_by_the_sdk(
    make_server: MakeServer, tapedeck_log: LogLines
) -> None:
    """A read timeout before the headers is a connection error: the SDK retries it."""
    spec = "latency:ms=500,times=1"
    with make_server() as s, sdk(s, max_retries=1, timeout=SHORT_READ) as c:
        tapedeck_log.only(s)
        with c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
        lines = tapedeck_log.wait_for(REQUEST_LINE, 2)
        assert statuses(lines) == ["-", "200"]  # the first attempt never got its headers
        assert tapedeck_log.matching("^fault on ") == [
            f"fault on POST /v1/messages (streaming/hello): {spec}"
        ]


def test_stall_pauses_before_event_n_plus_one(server: ServerThread) -> None:
    spec = "stall:after=3,ms=600"
    received: list[str] = []
    with sdk(server, timeout=SHORT_READ) as short, pytest.raises(httpx2.ReadTimeout):
        drain(short.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert received == delivered(3)
    with sdk(server, timeout=LONG) as patient:
        arrivals = timed_events(patient, {**HELLO, "stream": True}, fault(spec))
        with patient.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
    assert [name for name, _ in arrivals] == HELLO_EVENTS
    at = [t for _, t in arrivals]
    assert at[2] < 0.1
    assert 0.58 <= at[3] < 0.9
    assert at[7] - at[3] < 0.1


def test_stall_and_latency_under_recorded_timing(deck: ServerThread) -> None:
    """A stall shifts every later event; latency delays the headers, not the gaps."""
    timing = {"x-tapedeck-timing": "recorded"}
    with sdk(deck, timeout=LONG) as c:
        arrivals = timed_events(c, streamed("paced"), fault("stall:after=2,ms=300", **timing))
        started = time.perf_counter()
        delayed = timed_events(c, streamed("paced"), fault("latency:ms=200", **timing))
        took = time.perf_counter() - started
    at_ms = [t * 1000 for _, t in arrivals]
    for got, want in zip(at_ms, [0, 50, 400, 450, 500, 500], strict=True):
        assert abs(got - want) < 40, at_ms
    at_ms = [t * 1000 for _, t in delayed]
    for got, want in zip(at_ms, [0, 50, 100, 150, 200, 200], strict=True):
        assert abs(got - want) < 40, at_ms
    assert 0.38 <= took < 1


# --- p and seed ---------------------------------------------------------------------------------


def outcomes(client: anthropic.Anthropic, test_id: str, n: int) -> list[bool]:
    """For n streamed hellos with this test id: True where the stream broke with an error."""
    results, bodies = [], []
    for _ in range(n):
        received: list[str] = []
        try:
            drain(
                client.messages.create(
                    **HELLO, stream=True, extra_headers={"x-tapedeck-test-id": test_id}
                ),
                received,
            )
        except anthropic.APIStatusError as exc:
            bodies.append(exc.body)
            results.append(True)
        else:
            results.append(False)
        assert received == (delivered(3) if results[-1] else delivered(8))
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert bodies == [overloaded] * sum(results)
    return results


def test_seeded_p_is_reproducible_per_test_id(
    server: ServerThread, client: anthropic.Anthropic
) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    a, b = {"x-tapedeck-test-id": "seed-a"}, {"x-tapedeck-test-id": "seed-b"}
    spec = {"faults": "overloaded:after=3,p=0.5,seed=7"}
    try:
        assert httpx2.put(admin, json=spec, headers=a).status_code == 200
        assert httpx2.put(admin, json=spec, headers=b).status_code == 200
        first = outcomes(client, "seed-a", 20)
        assert 2 < sum(first) < 18
        assert httpx2.post(f"{server.base_url}/_tapedeck/reset", headers=a).status_code == 200
        again = []
        for _ in range(20):
            again += outcomes(client, "seed-a", 1)
            outcomes(client, "seed-b", 1)  # interleaved: never moves seed-a's decisions
        assert again == first
        # the same fault given in the header draws from the same per-test-id stream
        httpx2.post(f"{server.base_url}/_tapedeck/reset", headers=a)
        httpx2.delete(admin, headers=a)
        with sdk(server, default_headers=fault(spec["faults"])) as c:
            assert outcomes(c, "seed-a", 20) == first
    finally:
        httpx2.delete(admin, headers=a)
        httpx2.delete(admin, headers=b)


def test_p_zero_never_fires_and_is_not_listed(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**HELLO, extra_headers=fault("overloaded:p=0")) as stream:
        assert stream.get_final_text() == "Hello!"
        assert "x-tapedeck-faults" not in stream.response.headers


# --- where faults come from: admin API, header, server-wide -----------------------------------


def test_admin_faults_are_scoped_by_test_id(
    server: ServerThread, client: anthropic.Anthropic
) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    a, b = {"x-tapedeck-test-id": "scope-a"}, {"x-tapedeck-test-id": "scope-b"}
    try:
        put = httpx2.put(admin, json={"faults": "overloaded:after=2,times=2"}, headers=a)
        assert put.json() == {
            "status": "ok",
            "scope": "scope-a",
            "faults": "overloaded:after=2,times=2",
        }
        put = httpx2.put(admin, json={"faults": ["ping:every=1", "truncate:after=4"]}, headers=b)
        assert put.json() == {
            "status": "ok",
            "scope": "scope-b",
            "faults": "ping:every=1; truncate:after=4",
        }
        assert httpx2.get(admin, headers=a).json()["faults"] == "overloaded:after=2,times=2"
        assert httpx2.get(admin).json() == {"status": "ok", "scope": "server", "faults": "none"}
        other = {"x-tapedeck-test-id": "scope-c"}
        assert httpx2.get(admin, headers=other).json() == {
            "status": "ok",
            "scope": "scope-c",
            "faults": "none",
        }
        # test a's fault never fires on test b's requests, nor on requests without a test id
        raw: list[Any] = []
        raw_events(client, b, raw)
        assert [n for n, _ in raw] == [
            "message_start",
            "ping",
            "content_block_start",
            "ping",
            "ping",
            "ping",
            "content_block_delta",
            "ping",
        ]
        received: list[str] = []
        drain(client.messages.create(**HELLO, stream=True), received)
        assert received == delivered(8)
        # test a: two overloaded streams (times=2), then the plain one
        for _ in range(2):
            received = []
            with pytest.raises(anthropic.APIStatusError):
                drain(client.messages.create(**HELLO, stream=True, extra_headers=a), received)
            assert received == delivered(2)
        received = []
        drain(client.messages.create(**HELLO, stream=True, extra_headers=a), received)
        assert received == delivered(8)
        # a reset for test a rewinds its `times`
        httpx2.post(f"{server.base_url}/_tapedeck/reset", headers=a)
        with pytest.raises(anthropic.APIStatusError):
            drain(client.messages.create(**HELLO, stream=True, extra_headers=a), [])
        # DELETE with a test id drops that test's faults only
        deleted = httpx2.delete(admin, headers=a)
        assert deleted.json() == {"status": "ok", "scope": "scope-a", "faults": "none"}
        received = []
        drain(client.messages.create(**HELLO, stream=True, extra_headers=a), received)
        assert received == delivered(8)
        assert httpx2.get(admin, headers=b).json()["faults"] == "ping:every=1; truncate:after=4"
    finally:
        httpx2.delete(admin, headers=a)
        httpx2.delete(admin, headers=b)


def test_server_wide_faults_and_their_overrides(make_server: MakeServer) -> None:
    startup = "overloaded:after=2"
    with make_server(faults=parse_faults(startup)) as s, sdk(s) as c:
        admin = f"{s.base_url}/_tapedeck/faults"
        assert httpx2.get(admin).json() == {"status": "ok", "scope": "server", "faults": startup}

        def outcome(**headers: str) -> tuple[list[str], str | None]:
            received: list[str] = []
            try:
                drain(c.messages.create(**HELLO, stream=True, extra_headers=headers), received)
            except anthropic.APIStatusError as exc:
                return received, exc.type
            return received, None

        assert outcome() == (delivered(2), "overloaded_error")
        assert outcome(**{"x-tapedeck-test-id": "t1"}) == (delivered(2), "overloaded_error")
        # the request's own header replaces the server-wide faults; `none` disables them
        assert outcome(**fault("truncate:after=3")) == (delivered(3), None)
        assert outcome(**fault("none")) == (delivered(8), None)
        assert outcome(**fault("NONE", **{"x-tapedeck-test-id": "t1"})) == (delivered(8), None)
        # a test id's own `none` disables them for that test
        httpx2.put(admin, json={"faults": "none"}, headers={"x-tapedeck-test-id": "quiet"})
        assert outcome(**{"x-tapedeck-test-id": "quiet"}) == (delivered(8), None)
        assert outcome() == (delivered(2), "overloaded_error")
        # the admin API replaces the server-wide list; DELETE restores the startup faults
        put = httpx2.put(admin, json={"faults": "error:after=1,type=api_error"})
        assert put.json() == {
            "status": "ok",
            "scope": "server",
            "faults": "error:after=1,type=api_error",
        }
        assert outcome() == (delivered(1), "api_error")
        assert outcome(**{"x-tapedeck-test-id": "quiet"}) == (delivered(8), None)
        assert httpx2.delete(admin).json()["faults"] == startup
        assert outcome() == (delivered(2), "overloaded_error")


def test_header_replaces_admin_faults_for_one_request(
    server: ServerThread, client: anthropic.Anthropic
) -> None:
    admin = f"{server.base_url}/_tapedeck/faults"
    scope = {"x-tapedeck-test-id": "header-wins"}
    try:
        httpx2.put(admin, json={"faults": "overloaded"}, headers=scope)
        received: list[str] = []
        drain(
            client.messages.create(
                **HELLO, stream=True, extra_headers={**scope, **fault("truncate:after=4")}
            ),
            received,
        )
        assert received == delivered(4)
        with pytest.raises(anthropic.APIStatusError):
            drain(client.messages.create(**HELLO, stream=True, extra_headers=scope), [])
    finally:
        httpx2.delete(admin, headers=scope)


def test_faults_header_and_log_say_what_fired(
    client: anthropic.Anthropic, tapedeck_log: LogLines
) -> None:
    spec = "ping:every=3;truncate:after=6,p=0;  garble:after=99"
    response = client.messages.with_raw_response.create(
        **HELLO, stream=True, extra_headers=fault(spec)
    )
    response.parse().close()
    assert response.headers["x-tapedeck-faults"] == "ping:every=3; garble:after=99"
    assert response.headers["x-tapedeck-cassette"] == "streaming/hello"
    assert response.headers["request-id"] == "req_011Cgz2rBkkGvAfDyQ7P5MzY"
    assert tapedeck_log.matching("^fault on .*garble:after=99$") == [
        "fault on POST /v1/messages (streaming/hello): ping:every=3; garble:after=99"
    ]
    plain_response = client.messages.with_raw_response.create(**HELLO, stream=True)
    plain_response.parse().close()
    assert "x-tapedeck-faults" not in plain_response.headers


def test_request_log_line_of_a_fully_read_fault_stream(
    server: ServerThread, client: anthropic.Anthropic, tapedeck_log: LogLines
) -> None:
    """A stream the client read to its end is not logged as abandoned."""
    tapedeck_log.only(server)
    spec = "ping:every=3,seed=log-line"
    with client.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
        assert stream.get_final_text() == "Hello!"
    lines = tapedeck_log.wait_for(rf"^POST /v1/messages 200 .*{spec}", 1)
    assert len(lines) == 1
    assert re.fullmatch(
        rf"POST /v1/messages 200 streaming/hello faults: {spec} \d+\.\dms", lines[0]
    ), lines[0]


def test_fault_message_outside_latin_1(server: ServerThread, client: anthropic.Anthropic) -> None:
    """A fault set through the admin API may carry any text (the body is JSON)."""
    admin = f"{server.base_url}/_tapedeck/faults"
    scope = {"x-tapedeck-test-id": "unicode-message"}
    message = "Überlastet — 过载"
    try:
        put = httpx2.put(admin, json={"faults": f"error:after=1,message={message}"}, headers=scope)
        assert put.status_code == 200
        with pytest.raises(anthropic.APIStatusError) as caught:
            drain(client.messages.create(**HELLO, stream=True, extra_headers=scope), [])
        assert caught.value.status_code == 200
        assert caught.value.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": message},
        }
    finally:
        httpx2.delete(admin, headers=scope)


# --- non-streaming requests ---------------------------------------------------------------------


def test_status_and_latency_on_a_non_streaming_request(deck: ServerThread) -> None:
    with sdk(deck) as c:
        with pytest.raises(anthropic.OverloadedError) as caught:
            c.messages.create(**plain("plain"), extra_headers=fault("status:code=529"))
        assert caught.value.response.headers["x-tapedeck-faults"] == "status:code=529"
        started = time.perf_counter()
        response = c.messages.with_raw_response.create(
            **plain("plain"), extra_headers=fault("latency:ms=300")
        )
        took = time.perf_counter() - started
        assert response.headers["x-tapedeck-faults"] == "latency:ms=300"
        assert response.parse().content[0].text == "plain-answer"  # type: ignore[union-attr]
        assert 0.28 <= took < 1
    with sdk(deck, timeout=SHORT_READ) as short, pytest.raises(anthropic.APITimeoutError):
        short.messages.create(**plain("plain"), extra_headers=fault("latency:ms=400"))


@pytest.mark.parametrize(
    ("spec", "misplaced"),
    [
        ("ping:every=1", "ping:every=1"),
        ("truncate", "truncate"),
        ("status:code=529;garble:after=1;latency:ms=5;stall:ms=5", "garble:after=1, stall:ms=5"),
    ],
)
def test_stream_fault_in_the_header_of_a_non_streaming_request(
    deck: ServerThread, spec: str, misplaced: str
) -> None:
    with sdk(deck) as c, pytest.raises(anthropic.BadRequestError) as caught:
        c.messages.create(**plain("plain"), extra_headers=fault(spec))
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"tapedeck: x-tapedeck-fault: {misplaced} only applies to streaming "
            'requests ("stream": true); a non-streaming request takes status and latency',
        },
        "request_id": caught.value.request_id,
    }


def test_server_wide_stream_faults_skip_non_streaming_requests(
    make_server: MakeServer, deck_dir: Path
) -> None:
    with make_server(deck_dir, faults=parse_faults("overloaded:after=1,times=1")) as s, sdk(s) as c:
        for _ in range(3):
            response = c.messages.with_raw_response.create(**plain("plain"))
            assert "x-tapedeck-faults" not in response.headers
            assert response.parse().id == "msg_plain-answer"
        # the non-streaming requests did not use up the fault's single time
        with pytest.raises(anthropic.APIStatusError) as caught:
            drain(c.messages.create(**streamed("paced")), [])
        assert caught.value.type == "overloaded_error"
        received: list[str] = []
        drain(c.messages.create(**streamed("paced")), received)
        assert received[-1] == "message_stop"


# --- the pytest example of docs/faults.md -------------------------------------------------------
# Copied verbatim from docs/faults.md, from CASSETTES to the end (its imports are at the top).

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"  # your cassette directory


@pytest.fixture
def tapedeck_url() -> Iterator[str]:
    settings = Settings(cassettes=CASSETTES, port=0, timing=Timing.parse("instant"))
    with ServerThread(settings) as server:
        yield server.base_url


def test_retries_until_the_api_answers(tapedeck_url: str) -> None:
    fault = "status:code=529,times=2,retry_after_ms=1"
    with anthropic.Anthropic(
        base_url=tapedeck_url,
        api_key="test",
        max_retries=2,
        default_headers={"x-tapedeck-fault": fault},
    ) as client:
        response = client.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            stream=True,
            messages=[{"role": "user", "content": "Hello"}],
        )
        assert response.retries_taken == 2  # two 529s, then the recorded stream
        with response.parse() as stream:
            text = "".join(
                event.delta.text
                for event in stream
                if event.type == "content_block_delta" and event.delta.type == "text_delta"
            )
    assert text == "Hello!"


# (end of the example)


def test_docs_example_is_this_one() -> None:
    doc = (ROOT / "docs" / "faults.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(# test_retry\.py\n.*?)```", doc, re.DOTALL)
    assert example is not None, "docs/faults.md lost its pytest example"
    code = example.group(1)
    body = code[code.index("CASSETTES = ") :]
    this = Path(__file__).read_text(encoding="utf-8")
    assert body in this
