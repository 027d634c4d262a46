"""Claude on Bedrock: ``AnthropicBedrock`` replays the shipped cassettes through tapedeck's
Bedrock front door, sees a miss and every fault as Bedrock delivers them, and its SigV4
credentials never reach a cassette or the log."""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CASSETTES, HELLO, LogLines, MakeServer, sdk
from fake_upstream import FakeUpstream, ask
from record_helpers import files, proxy
from tapedeck.platforms.bedrock import BedrockRoute
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing
from tapedeck.wire.sse_decode import SSEDecoder

MODEL = "claude-sonnet-4-5"
STREAM_PATH = f"/model/{MODEL}/invoke-with-response-stream"
#: What AnthropicBedrock sends for HELLO: no model or stream, Bedrock's anthropic_version.
BEDROCK_HELLO = {
    "anthropic_version": "bedrock-2023-05-31",
    **{k: v for k, v in HELLO.items() if k != "model"},
}


def bedrock(server: ServerThread, **kwargs: Any) -> anthropic.AnthropicBedrock:
    kwargs.setdefault("max_retries", 0)
    return anthropic.AnthropicBedrock(
        aws_access_key="k",
        aws_secret_key="s",
        aws_region="us-east-1",
        base_url=server.base_url,
        **kwargs,
    )


@pytest.fixture
def client(server: ServerThread) -> Iterator[anthropic.AnthropicBedrock]:
    with bedrock(server) as c:
        yield c


def frames(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The event stream's messages, as botocore parses them."""
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return [(m.headers, m.payload) for m in buffer]


def first_party_events(server: ServerThread) -> list[str]:
    response = httpx.post(
        f"{server.base_url}/v1/messages",
        json={**HELLO, "stream": True},
        headers={"anthropic-version": "2023-06-01"},
    )
    return [e.data for e in SSEDecoder().feed(response.content)]


def fault(spec: str) -> dict[str, Any]:
    return {"extra_headers": {"x-tapedeck-fault": spec}}


def ask_hello(client: anthropic.AnthropicBedrock, spec: str, streamed: bool = True) -> None:
    """HELLO with the fault ``spec``, streamed to the end or as JSON."""
    if not streamed:
        client.messages.create(**HELLO, **fault(spec))
        return
    with client.messages.stream(**HELLO, **fault(spec)) as stream:
        stream.until_done()


def streamed_to_end(client: anthropic.AnthropicBedrock, request: dict[str, Any]) -> None:
    with client.messages.stream(**request) as stream:
        stream.until_done()


def ask_text(client: anthropic.AnthropicBedrock) -> str:
    with client.messages.stream(**HELLO) as stream:
        return stream.get_final_text()


def cut_body(server: ServerThread, spec: str) -> bytes:
    """The bytes of a raw streamed request received before its connection was cut."""
    received = b""
    headers = {"x-tapedeck-fault": spec}
    with httpx.stream(
        "POST", f"{server.base_url}{STREAM_PATH}", json=BEDROCK_HELLO, headers=headers
    ) as response:
        try:
            for piece in response.iter_raw():
                received += piece
        except httpx.RemoteProtocolError:
            return received
    raise AssertionError("the connection was not cut")


# --- replay -----------------------------------------------------------------------------


def test_a_streamed_hello_replays(client: anthropic.AnthropicBedrock) -> None:
    with client.messages.stream(**HELLO) as stream:
        types = [event.type for event in stream]
        message = stream.get_final_message()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello!"
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"


def test_a_json_hello_replays(client: anthropic.AnthropicBedrock) -> None:
    raw = client.messages.with_raw_response.create(**HELLO)
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-amzn-requestid"].startswith("req_")
    assert "request-id" not in raw.headers  # Bedrock's own name only
    assert raw.request_id is None  # as the SDK shows a real Bedrock answer
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello!"


def test_a_stream_sent_on_its_recorded_timing_is_reframed_piece_by_piece(
    make_server: MakeServer,
) -> None:
    with make_server(CASSETTES, timing=Timing.parse("recorded")) as s, bedrock(s) as c:
        text = ask_text(c)
    assert text == "Hello!"


def test_each_event_is_a_chunk_carrying_the_first_party_events_json(
    server: ServerThread,
) -> None:
    response = httpx.post(f"{server.base_url}{STREAM_PATH}", json=BEDROCK_HELLO)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    got = frames(response.content)
    for headers, _ in got:
        assert headers == {
            ":event-type": "chunk",
            ":content-type": "application/json",
            ":message-type": "event",
        }
    carried = [base64.b64decode(json.loads(payload)["bytes"]).decode() for _, payload in got]
    assert carried == first_party_events(server)


def test_a_miss_is_bedrocks_404_with_tapedecks_message(client: anthropic.AnthropicBedrock) -> None:
    with pytest.raises(anthropic.NotFoundError) as miss:
        client.messages.create(**ask("never recorded"))
    response = miss.value.response
    assert response.headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert set(response.json()) == {"message"}
    assert response.json()["message"].startswith("tapedeck: no cassette matches")


# --- faults -----------------------------------------------------------------------------


def exception_frame(server: ServerThread, spec: str) -> tuple[list[str], dict[str, Any], Any]:
    """The chunks' event types before the exception message, its headers and its body."""
    response = httpx.post(
        f"{server.base_url}{STREAM_PATH}", json=BEDROCK_HELLO, headers={"x-tapedeck-fault": spec}
    )
    *chunks, (headers, payload) = frames(response.content)
    types = [json.loads(base64.b64decode(json.loads(p)["bytes"]))["type"] for _, p in chunks]
    return types, headers, json.loads(payload)


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        ("overloaded:after=2", 529, "Overloaded"),
        ("error:after=2,type=api_error,message=broke", 500, "broke"),
    ],
)
def test_an_in_stream_error_is_a_model_stream_error_exception_message(
    server: ServerThread, client: anthropic.AnthropicBedrock, spec: str, status: int, message: str
) -> None:
    types, headers, body = exception_frame(server, spec)
    assert types == ["message_start", "content_block_start"]
    assert headers == {
        ":exception-type": "modelStreamErrorException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert body == {"message": message, "originalStatusCode": status, "originalMessage": message}
    with pytest.raises(anthropic.APIStatusError) as raised:
        ask_hello(client, spec)
    assert raised.value.status_code == 200
    assert raised.value.type == "modelStreamErrorException"
    assert raised.value.message.startswith(message)


@pytest.mark.parametrize(
    ("spec", "exception", "status", "error_type"),
    [
        ("status:code=529", anthropic.ServiceUnavailableError, 503, "ServiceUnavailableException"),
        ("status:code=503", anthropic.ServiceUnavailableError, 503, "ServiceUnavailableException"),
        ("status:code=429", anthropic.RateLimitError, 429, "ThrottlingException"),
        ("status:code=500", anthropic.InternalServerError, 500, "InternalServerException"),
        ("status:code=400", anthropic.BadRequestError, 400, "ValidationException"),
    ],
)
@pytest.mark.parametrize("streamed", [True, False])
def test_a_status_is_bedrocks_status_and_errortype(
    client: anthropic.AnthropicBedrock,
    spec: str,
    exception: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
    streamed: bool,
) -> None:
    with pytest.raises(exception) as raised:
        ask_hello(client, spec, streamed)
    response = raised.value.response
    assert response.status_code == status
    assert response.headers["x-amzn-errortype"] == error_type
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"message"}


def test_the_sdk_retries_bedrocks_503_and_gets_the_answer(server: ServerThread) -> None:
    with bedrock(server, max_retries=2) as c:
        spec = "status:code=529,times=1,retry_after_ms=1"
        message = c.messages.create(**HELLO, **fault(spec + f",seed={id(c)}"))
    assert message.content[0].type == "text"


def test_a_disconnect_is_a_connection_error_after_whole_chunks(
    server: ServerThread, client: anthropic.AnthropicBedrock
) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        ask_hello(client, "disconnect:after=3")
    assert len(frames(cut_body(server, "disconnect:after=3"))) == 3
    # a cut inside an event: the messages before it, whole (botocore parses every one)
    assert len(frames(cut_body(server, "disconnect:after_bytes=300"))) >= 1


def test_a_truncated_stream_ends_cleanly_with_a_partial_message(
    client: anthropic.AnthropicBedrock,
) -> None:
    with client.messages.stream(**HELLO, **fault("truncate:after=4")) as stream:
        types = [event.type for event in stream]
    assert "message_stop" not in types
    assert "text" in types


def test_pings_are_chunks_the_sdk_skips(client: anthropic.AnthropicBedrock) -> None:
    with client.messages.stream(**HELLO, **fault("ping:every=1")) as stream:
        assert stream.get_final_text() == "Hello!"


# --- credentials --------------------------------------------------------------------------

AKID = "AKIDBEDROCKTESTKEY42"
SECRET = "bedrock-secret-key-never-written"
TOKEN = "bedrock-session-token-never-written"
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.x"


def test_sigv4_credentials_never_reach_a_cassette_or_the_log(
    tmp_path: Path,
    fake: FakeUpstream,
    make_server: MakeServer,
    tapedeck_log: LogLines,
) -> None:
    tapedeck_log.setLevel(logging.DEBUG)
    logging.getLogger("tapedeck").setLevel(logging.DEBUG)
    with proxy(make_server, tmp_path, "record", fake) as s:
        client = anthropic.AnthropicBedrock(
            aws_access_key=AKID,
            aws_secret_key=SECRET,
            aws_session_token=TOKEN,
            aws_region="us-east-1",
            base_url=s.base_url,
            max_retries=0,
        )
        with client:
            with client.messages.stream(**ask("signed")) as stream:
                stream.until_done()
            client.beta.messages.create(
                **{**ask("with betas"), "model": ARN}, betas=["beta-two", "beta-one"]
            )
        journal = httpx.get(f"{s.base_url}/_tapedeck/journal").text
    seen = fake.requests()
    assert [r.path for r in seen] == ["/v1/messages", "/v1/messages"]
    assert seen[0].body == {**ask("signed"), "stream": True}
    assert seen[1].body == {**ask("with betas"), "model": ARN}  # its "/" sent as %2F
    assert seen[1].headers["anthropic-beta"] == "beta-two,beta-one"
    assert seen[0].headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=" + AKID)
    written = "".join(p.read_text(errors="replace") for p in files(tmp_path))
    logged = "\n".join(tapedeck_log.lines())
    assert "/v1/messages" in logged, logged
    assert len(files(tmp_path)) == 2
    assert "beta-two" in journal  # the journal shows the requests' headers that matter
    for secret in (AKID, TOKEN, "AWS4-HMAC-SHA256", "Signature="):
        assert secret not in written
        assert secret not in logged
        assert secret not in journal
    # the recording, made through Bedrock, answers the first-party client too
    with make_server(tmp_path) as s, sdk(s) as first_party:
        answer = first_party.beta.messages.create(
            **{**ask("with betas"), "model": ARN}, betas=["beta-one", "beta-two"]
        )
    assert answer.content[0].type == "text"


def test_latency_and_stall_time_out_as_first_party(server: ServerThread) -> None:
    with bedrock(server, timeout=0.3) as c:
        with pytest.raises(anthropic.APITimeoutError):
            ask_hello(c, "latency:ms=5000", streamed=False)
        with pytest.raises(anthropic.APITimeoutError):
            ask_hello(c, "stall:after=2,ms=5000")


def test_a_garbled_event_is_a_chunk_whose_json_is_cut(
    server: ServerThread, client: anthropic.AnthropicBedrock
) -> None:
    response = httpx.post(
        f"{server.base_url}{STREAM_PATH}",
        json=BEDROCK_HELLO,
        headers={"x-tapedeck-fault": "garble:after=1"},
    )
    carried = [
        base64.b64decode(json.loads(p)["bytes"]).decode() for _, p in frames(response.content)
    ]
    assert carried[0] == first_party_events(server)[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(carried[1])
    with pytest.raises(json.JSONDecodeError):
        ask_hello(client, "garble:after=1")


def test_a_used_up_quota_is_a_throttling_exception(client: anthropic.AnthropicBedrock) -> None:
    headers = {"x-tapedeck-fault": "quota:requests=1/60s", "x-tapedeck-test-id": "bedrock-quota"}
    client.messages.create(**HELLO, extra_headers=headers)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(**HELLO, extra_headers=headers)
    response = raised.value.response
    assert response.headers["x-amzn-errortype"] == "ThrottlingException"
    assert "retry-after" in response.headers


def test_the_shipped_error_cassettes_replay_as_bedrocks_errors(
    client: anthropic.AnthropicBedrock,
) -> None:
    story = {**HELLO, "messages": [{"role": "user", "content": "Tell me a story"}]}
    with pytest.raises(anthropic.APIStatusError) as in_stream:
        streamed_to_end(client, story)
    assert in_stream.value.type == "modelStreamErrorException"
    assert in_stream.value.status_code == 200
    haiku = {**HELLO, "messages": [{"role": "user", "content": "Write a haiku about autumn."}]}
    with pytest.raises(anthropic.ServiceUnavailableError) as overloaded:
        client.messages.create(**haiku)
    assert overloaded.value.response.headers["x-amzn-errortype"] == "ServiceUnavailableException"


EVENTS = [
    ("message_start", '{"type":"message_start"}'),
    ("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_the_reframer_gives_the_same_messages_however_the_body_is_split(cuts: list[int]) -> None:
    body = b"".join(f"event: {e}\ndata: {d}\n\n".encode() for e, d in EVENTS)
    reframe = BedrockRoute(platform="bedrock", path="/v1/messages").reframe()
    _status, headers = reframe.head(200, [(b"content-type", b"text/event-stream; charset=utf-8")])
    assert (b"content-type", b"application/vnd.amazon.eventstream") in headers
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    pieces = [body[a:b] for a, b in itertools.pairwise(points)]
    out = b"".join(reframe.body(p, i < len(pieces) - 1) for i, p in enumerate(pieces))
    (_chunk_headers, chunk), (error_headers, error) = frames(out)
    assert base64.b64decode(json.loads(chunk)["bytes"]).decode() == EVENTS[0][1]
    assert error_headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(error)["originalStatusCode"] == 529
