"""The secrets scan's platform rows: recording THROUGH a platform (``upstream_form=platform``)
with each platform's credential, against an in-process stand-in upstream that checks the
credential arrived where the platform wants it (and answers in the platform's form).

The credentials are not ``sk-ant-`` shaped (tapedeck replaces those in any text, which
would hide a leak): a SigV4 ``authorization`` and ``x-amz-security-token`` (the client's,
and the upstream's from the AWS environment variables tapedeck re-signs with, its secret
key too), a Google bearer token, Foundry's ``api-key``, a Bedrock API key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tapedeck.wire.eventstream import encode_chunk

from . import cassettes

#: The platform credentials a row may send (``Row.auth``).
PLATFORM_AUTH = ("bedrock-sigv4", "bedrock-key", "mantle-sigv4", "google-bearer", "foundry-key")
_VERTEX = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/m:"
_UPSTREAM_KEY_ID = "AKIDUPSTREAMSCAN"


def _signature(core: str, service: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIDCLIENT{core}/20260101/us-east-1/{service}/"
        f"aws4_request, SignedHeaders=host;x-amz-date, Signature=sig{core}"
    )


def request(auth: str, core: str, stream: bool) -> tuple[str, dict[str, str], bytes]:
    """``(path, headers, body)`` of a platform client's request carrying ``core``."""
    body: dict[str, Any] = cassettes.ask(f"platform row {auth}", stream=stream)
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    if auth in ("bedrock-sigv4", "bedrock-key"):
        body.pop("model")
        body.pop("stream", None)
        body["anthropic_version"] = "bedrock-2023-05-31"
        path = "/model/m/invoke-with-response-stream" if stream else "/model/m/invoke"
    elif auth == "google-bearer":
        body.pop("model")
        body["anthropic_version"] = "vertex-2023-10-16"
        path = _VERTEX + ("streamRawPredict" if stream else "rawPredict")
    else:
        path = "/anthropic/v1/messages"
    if auth in ("bedrock-sigv4", "mantle-sigv4"):
        service = "bedrock" if auth == "bedrock-sigv4" else "bedrock-mantle"
        headers["authorization"] = _signature(core, service)
        headers["x-amz-date"] = "20260101T000000Z"
        headers["x-amz-security-token"] = f"FwoGZXIvYXdzEClient{core}"
    elif auth == "foundry-key":
        headers["api-key"] = headers["x-api-key"] = f"foundry{core}"
    else:
        prefix = "ya29." if auth == "google-bearer" else "ABSKQmVkcm9jaw"
        headers["authorization"] = f"Bearer {prefix}{core}"
    return path, headers, json.dumps(body).encode()


def _accepted(auth: str, core: str, headers: httpx.Headers) -> bool:
    if auth.endswith("sigv4"):
        signed = headers.get("authorization", "")
        return signed.startswith(f"AWS4-HMAC-SHA256 Credential={_UPSTREAM_KEY_ID}/") and (
            headers.get("x-amz-security-token") == f"upstream-token-{core}"
        )
    if auth == "foundry-key":
        return headers.get("api-key") == f"foundry{core}"
    return core in headers.get("authorization", "")


def reply(auth: str, core: str) -> Callable[[httpx.Request], httpx.Response]:
    """The stand-in upstream: 502 unless the credential came as the platform takes it;
    else the answer in the platform's form (Bedrock: an event stream)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if not _accepted(auth, core, request.headers):
            return httpx.Response(502, json={"message": "credential not as the platform takes it"})
        streamed = "stream" in request.url.path or b'"stream": true' in request.content
        events = cassettes.message_events(["plain", " text"], 0)
        if not streamed:
            message = {
                "id": "msg_up",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [{"type": "text", "text": "plain text"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 2},
            }
            return httpx.Response(200, json=message)
        if auth.startswith("bedrock"):
            frames = b"".join(encode_chunk(json.dumps(e["data"]).encode()) for e in events)
            kind = "application/vnd.amazon.eventstream"
            return httpx.Response(200, content=frames, headers={"content-type": kind})
        wire = cassettes.wire_bytes(events)
        return httpx.Response(200, content=wire, headers={"content-type": "text/event-stream"})

    return answer


@contextmanager
def aws_environment(core: str) -> Iterator[None]:
    """The AWS credentials tapedeck re-signs with (its secret key holds ``core``), and no
    other place for botocore to look."""
    values = {
        "AWS_ACCESS_KEY_ID": _UPSTREAM_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": f"upstream-secret-{core}",
        "AWS_SESSION_TOKEN": f"upstream-token-{core}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {k: os.environ.get(k) for k in [*values, "AWS_PROFILE"]}
    os.environ.update(values)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
