"""Faults inside a stream, as the official SDK sees them over a real socket.

Each kind (ping, error and overloaded events, disconnect, truncate, garble) is checked for
the exact client-visible outcome: which exception the SDK raises, after how many events,
and what the raw bytes or raw events were. What a cut stream raises depends on the SDK
release; the conformance table says which (:func:`conformance_sdk.raises_like`).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from conformance_sdk import CUT, raises_like
from conftest import HELLO, sdk, streamed
from fault_helpers import (
    EARLY,
    HELLO_ENCODED,
    HELLO_EVENTS,
    LONG,
    PING_DATA,
    SHORT_READ,
    adrain,
    data_of,
    delivered,
    drain,
    fault,
    raw_body,
    raw_events,
    timed_events,
)
from tapedeck.server.runner import ServerThread

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
    # A ping after each 100 ms of silence in the 300 ms gap: two, or one if the machine is so
    # busy that the first comes more than 100 ms late.
    pings = names.count("ping")
    assert 1 <= pings <= 2, names
    assert names == [
        "message_start",
        "content_block_start",
        *["ping"] * pings,
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    # None comes sooner than it may (a time from the request is a bound tapedeck sets): the
    # Nth ping N x 100 ms after the request, the text 300 ms after it.
    at = [t for _, t in arrivals]
    assert all(at[2 + n] >= 0.1 * (n + 1) - EARLY for n in range(pings)), at
    assert at[2 + pings] >= 0.3 - EARLY, at


def test_ping_interval_keeps_a_stalled_stream_alive(deck: ServerThread) -> None:
    """Pings every 100 ms during a 600 ms stall: a 200 ms read timeout never fires."""
    spec = "stall:after=3,ms=600;ping:interval=100"
    with sdk(deck, timeout=SHORT_READ) as c:
        received: list[Any] = []
        raw_events(c, fault(spec), received)
        with c.messages.stream(**HELLO, extra_headers=fault(spec)) as stream:
            assert stream.get_final_text() == "Hello!"
    names = [name for name, _ in received]
    # A ping each 100 ms of the stall: five, or fewer on a busy machine (but never a silence as
    # long as the read timeout, or the reads above would have failed).
    pings = names.count("ping") - 1  # the recorded one is the third event
    assert 1 <= pings <= 5, names
    assert names == [*HELLO_EVENTS[:3], *["ping"] * pings, *HELLO_EVENTS[3:]]


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
    with raises_like(CUT):
        drain(client.messages.create(**HELLO, stream=True, extra_headers=fault(spec)), received)
    assert received == delivered(after)
    raw: list[Any] = []
    # Stream.raw_events reads the body itself: the HTTP library's own error, in every release.
    with pytest.raises(httpx2.RemoteProtocolError) as caught:
        raw_events(client, fault(spec), raw)
    assert [name for name, _ in raw] == HELLO_EVENTS[:after]
    assert str(caught.value) == (
        "peer closed connection without sending complete message body (incomplete chunked read)"
    )


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
    with raises_like(CUT):
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
    with raises_like(CUT):
        await adrain(stream, received)
    assert received == delivered(4)
    helper: list[str] = []
    cut = len(HELLO_ENCODED[0]) + 5
    with raises_like(CUT):
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
