"""Bad input gets the API's error shape and status, raw and through the SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from conftest import HELLO, MakeServer, api_error, sdk
from tapedeck.server.runner import ServerThread

#: Bodies go as JSON, whatever they hold: the checks of the body itself are tested here.
JSON_TYPE = {"content-type": "application/json"}


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30, headers=JSON_TYPE) as h:
        yield h


def sdk_post(client: anthropic.Anthropic, content: bytes, path: str = "/v1/messages") -> Any:
    return client.post(
        path,
        cast_to=object,
        content=content,
        options={"headers": {"content-type": "application/json"}},
    )


def sdk_error(exc: anthropic.APIStatusError, status: int, error_type: str) -> str:
    assert exc.status_code == status
    assert isinstance(exc.body, dict)
    assert exc.body["type"] == "error"
    assert exc.body["error"]["type"] == error_type
    assert exc.type == error_type
    assert "Traceback" not in str(exc.body)
    message: str = exc.body["error"]["message"]
    return message


def read_stream(manager: Any) -> None:
    with manager as stream:
        stream.until_done()


# --- request bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{bad", "not valid JSON"),
        (b'{"model": "m",', "not valid JSON"),
        (b'{"model": "m"} trailing', "not valid JSON"),
        (b"{'single': 'quotes'}", "not valid JSON"),
    ],
)
def test_malformed_json(
    http: httpx.Client, client: anthropic.Anthropic, body: bytes, problem: str
) -> None:
    message = api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")
    assert problem in message
    assert "line 1 column" in message  # where the problem is
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk_post(client, body)
    assert sdk_error(caught.value, 400, "invalid_request_error") == message


@pytest.mark.parametrize("body", [b"[1, 2]", b'"a string"', b"42", b"1.5", b"true", b"null"])
def test_body_must_be_an_object(
    http: httpx.Client, client: anthropic.Anthropic, body: bytes
) -> None:
    message = api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")
    assert "must be a JSON object" in message
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk_post(client, body)
    sdk_error(caught.value, 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[1, 2]", "array"),
        (b'"a string"', "string"),
        (b"42", "number"),
        (b"1.5", "number"),
        (b"true", "boolean"),
        (b"null", "null"),
    ],
)
def test_non_object_body_message_names_the_json_type(
    http: httpx.Client, body: bytes, kind: str
) -> None:
    message = api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")
    assert message.endswith(f"got a JSON {kind}")


@pytest.mark.parametrize("body", [b"", b"   ", b"\r\n\t "])
def test_empty_body(http: httpx.Client, client: anthropic.Anthropic, body: bytes) -> None:
    message = api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")
    assert "empty" in message
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk_post(client, body)
    sdk_error(caught.value, 400, "invalid_request_error")
    # count_tokens takes a JSON object too.
    api_error(http.post("/v1/messages/count_tokens", content=body), 400, "invalid_request_error")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"model": "caf\xe9"}', id="latin-1"),
        pytest.param(b'{"a": "\xff\xfe"}', id="invalid-bytes"),
        pytest.param(b'{"a": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param('{"model": "m"}'.encode("utf-16"), id="utf-16"),
        pytest.param('{"model": "m"}'.encode("utf-32"), id="utf-32"),
    ],
)
def test_non_utf8_body(http: httpx.Client, client: anthropic.Anthropic, body: bytes) -> None:
    message = api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")
    assert "UTF-8" in message
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk_post(client, body)
    sdk_error(caught.value, 400, "invalid_request_error")


def test_deeply_nested_json_is_a_400_not_a_500(http: httpx.Client) -> None:
    depth = 100_000
    body = b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")


def test_huge_integer_literal_is_a_400_not_a_500(http: httpx.Client) -> None:
    body = b'{"model": "m", "max_tokens": ' + b"9" * 5000 + b"}"
    api_error(http.post("/v1/messages", content=body), 400, "invalid_request_error")


# --- size limit -----------------------------------------------------------------------------


def test_body_over_small_limit(make_server: MakeServer) -> None:
    assert anthropic.RequestTooLargeError is anthropic.ContentTooLargeError
    with (
        make_server(max_body_size=1024) as s,
        httpx.Client(base_url=s.base_url, headers=JSON_TYPE) as h,
    ):
        big = json.dumps({"model": "m", "pad": "x" * 2048}).encode()
        message = api_error(h.post("/v1/messages", content=big), 413, "request_too_large")
        assert str(len(big)) in message
        assert "1024" in message
        # At the limit exactly: accepted (and then a miss); one byte more: refused.
        fields = {"model": "m", "max_tokens": 1, "messages": []}
        exact = json.dumps({**fields, "pad": ""}).encode()
        exact = json.dumps({**fields, "pad": "x" * (1024 - len(exact))}).encode()
        assert len(exact) == 1024
        api_error(h.post("/v1/messages", content=exact), 404, "not_found_error")
        api_error(h.post("/v1/messages", content=exact + b" "), 413, "request_too_large")
        with (
            sdk(s) as client,
            pytest.raises(anthropic.RequestTooLargeError) as caught,
        ):
            client.messages.create(
                model="m", max_tokens=1, messages=[{"role": "user", "content": "y" * 2048}]
            )
        assert sdk_error(caught.value, 413, "request_too_large").startswith("tapedeck: ")


def test_body_over_default_limit(http: httpx.Client) -> None:
    size = 32 * 1024 * 1024 + 1
    body = b'{"a":"' + b"x" * (size - 8) + b'"}'
    assert len(body) == size
    message = api_error(http.post("/v1/messages", content=body), 413, "request_too_large")
    assert str(size) in message
    assert str(32 * 1024 * 1024) in message


# --- paths and methods ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/nope", "/v2/x", "/", "/_tapedeck/nope", "/v1messages"])
def test_unknown_path(http: httpx.Client, method: str, path: str) -> None:
    message = api_error(http.request(method, path, json=HELLO), 404, "not_found_error")
    assert path in message


def test_unknown_path_through_sdk(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.get("/nope", cast_to=object)
    assert "/nope" in sdk_error(caught.value, 404, "not_found_error")
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.post("/v2/x", cast_to=object, body=HELLO)
    sdk_error(caught.value, 404, "not_found_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/messages"),
        ("DELETE", "/v1/messages"),
        ("PUT", "/v1/messages"),
        ("GET", "/v1/messages/count_tokens"),
        ("GET", "/_tapedeck/reset"),
        ("POST", "/_tapedeck/health"),
    ],
)
def test_wrong_method(
    http: httpx.Client, client: anthropic.Anthropic, method: str, path: str
) -> None:
    message = api_error(http.request(method, path), 405, "invalid_request_error")
    assert method in message
    assert path in message
    with pytest.raises(anthropic.APIStatusError) as caught:
        getattr(client, method.lower())(path, cast_to=object)
    assert type(caught.value) is anthropic.APIStatusError
    sdk_error(caught.value, 405, "invalid_request_error")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/messages", "POST"),
        ("DELETE", "/v1/messages", "POST"),
        ("GET", "/_tapedeck/reset", "POST"),
        ("POST", "/_tapedeck/health", "GET"),
    ],
)
def test_405_says_which_methods_are_allowed(
    http: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = http.request(method, path)
    assert response.status_code == 405
    # RFC 9110 15.5.6: a 405 response MUST carry an Allow header.
    assert "allow" in response.headers
    assert allowed in [m.strip() for m in response.headers["allow"].split(",")]


# --- the timing header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["bogus", "speed=0", "speed=-1", "speed=abc", "speed=inf", "speed=nan", "fixed=-5", "fixed="],
)
def test_bad_timing_header(http: httpx.Client, client: anthropic.Anthropic, spec: str) -> None:
    response = http.post(
        "/v1/messages", json={**HELLO, "stream": True}, headers={"x-tapedeck-timing": spec}
    )
    message = api_error(response, 400, "invalid_request_error")
    assert "x-tapedeck-timing" in message
    assert repr(spec) in message
    with pytest.raises(anthropic.BadRequestError) as caught:
        read_stream(client.messages.stream(**HELLO, extra_headers={"x-tapedeck-timing": spec}))
    assert sdk_error(caught.value, 400, "invalid_request_error") == message


def test_good_timing_header_is_accepted(http: httpx.Client) -> None:
    for spec in ("instant", "INSTANT", "speed=1000", "Speed=1e3", "fixed=0"):
        response = http.post(
            "/v1/messages", json={**HELLO, "stream": True}, headers={"x-tapedeck-timing": spec}
        )
        assert response.status_code == 200, spec
        assert response.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_log_lines_escape_control_characters_and_redact_keys_in_paths(
    http: httpx.Client, tapedeck_log: Any
) -> None:
    """A percent-encoded line break in the path could forge a log line; a key in the path
    must not reach the log."""
    http.get("/v1/models/x%0a10:21:31 POST /v1/messages 200 forged 1.0ms")
    http.get("/v1/models/sk-ant-api03-INPATH-KEY-0000")
    lines = tapedeck_log.wait_for("GET /v1/models/", count=2)
    assert len(lines) == 2
    assert "\n" not in lines[0]
    assert lines[0].startswith("GET /v1/models/x\\n10:21:31 POST ")
    assert "INPATH-KEY" not in lines[1]
    assert "sk-ant-REDACTED" in lines[1]
