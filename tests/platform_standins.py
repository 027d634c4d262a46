"""Stand-ins for the platforms' own endpoints, on a real socket, that check the credential.

One ASGI app serves three platforms by path, each answering the way the platform does:

- **Bedrock** (``/model/{model}/invoke[-with-response-stream]``): the SigV4 signature is
  verified with botocore's ``SigV4Auth`` and the known :data:`UPSTREAM_AWS` keys over the
  request as received (its ``SignedHeaders``, path, query and body); a bearer must be
  :data:`BEDROCK_API_KEY`. A bad credential gets 403 ``InvalidSignatureException``. Streams
  are ``application/vnd.amazon.eventstream`` ``chunk`` messages (the last event carrying
  ``amazon-bedrock-invocationMetrics``); errors ``x-amzn-errortype`` and ``{"message"}``.
- **Vertex** (``/v1/projects/…/publishers/anthropic/models/{model}:[stream]rawPredict``): the
  bearer must be :data:`GOOGLE_TOKEN`; a bad one gets Google's 401 ``UNAUTHENTICATED``.
- **Foundry** (``/anthropic/v1/messages``): ``api-key`` must be :data:`FOUNDRY_KEY` (or the
  key tests give tapedeck, :data:`UPSTREAM_KEY`).
- **Mantle** (``/anthropic/v1/messages``) and **AWS** (``/v1/messages``), SigV4-signed: the
  signature verified as Bedrock's, for service ``bedrock-mantle`` / ``aws-external-anthropic``;
  first-party answers.

The first word of the last user message picks an error: ``throttle`` (Bedrock 429
``ThrottlingException``), ``streamfail`` (a Bedrock stream ending in a
``modelStreamErrorException``), ``quota`` (Vertex's 429 ``RESOURCE_EXHAUSTED``).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.types import Receive, Scope, Send

from app_thread import AppThread
from fake_upstream import answer_text, last_user_text, message, stream_events
from platform_clients import FOUNDRY_KEY, GOOGLE_TOKEN
from tapedeck.wire.eventstream import encode_chunk, encode_exception

#: The AWS credentials the stand-in verifies signatures with (tapedeck's, from its env).
UPSTREAM_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIDUPSTREAMEXAMPLE7",
    "AWS_SECRET_ACCESS_KEY": "UPSTREAM-AWS-SECRET-7",
    "AWS_SESSION_TOKEN": "UPSTREAM-AWS-SESSION-TOKEN-7",
}
BEDROCK_API_KEY = "bedrock-api-key-UPSTREAM-7"
UPSTREAM_KEY = "upstream-KEY-FROM-ENV-7"


@dataclass
class Seen:
    """One request as the stand-in received it."""

    platform: str
    raw_path: str
    headers: dict[str, str]
    body: Any
    accepted: bool


class PlatformStandIn:
    """The stand-in on ``127.0.0.1``; a context manager; ``base_url`` is its address."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._served = AppThread(self.app, "the platform stand-in")
        self.base_url = self._served.base_url

    def __enter__(self) -> PlatformStandIn:
        self._served.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._served.stop()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            got = await receive()
            raw += got.get("body", b"")
            if not got.get("more_body", False):
                break
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        body = json.loads(raw) if raw else None
        signed = headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 ")
        if signed and not path.startswith("/model/"):  # Mantle (/anthropic/v1/...) or AWS (/v1/...)
            name = "mantle" if path.startswith("/anthropic/") else "aws"
            service = "bedrock-mantle" if name == "mantle" else "aws-external-anthropic"
            ok = _aws_ok(scope, headers, raw, service)
            seen = Seen(name, scope["raw_path"].decode(), headers, body, ok)
            answer = _foundry(body, ok)
        elif path.startswith("/model/"):
            ok = _aws_ok(scope, headers, raw)
            seen = Seen("bedrock", scope["raw_path"].decode(), headers, body, ok)
            answer = _bedrock(path, body, ok)
        elif "/publishers/anthropic/models/" in path:
            ok = headers.get("authorization") in (
                f"Bearer {GOOGLE_TOKEN}",
                f"Bearer {UPSTREAM_KEY}",
            )
            seen = Seen("vertex", scope["raw_path"].decode(), headers, body, ok)
            answer = _vertex(path, body, ok)
        elif "/invoke/v1/" in path:  # Google Cloud: first-party under its workspace
            ok = headers.get("authorization") in (
                f"Bearer {GOOGLE_TOKEN}",
                f"Bearer {UPSTREAM_KEY}",
            )
            seen = Seen("google-cloud", scope["raw_path"].decode(), headers, body, ok)
            answer = _foundry(body, ok)
        else:
            ok = headers.get("api-key") in (FOUNDRY_KEY, UPSTREAM_KEY)
            seen = Seen("foundry", scope["raw_path"].decode(), headers, body, ok)
            answer = _foundry(body, ok)
        with self._lock:
            self.seen.append(seen)
        status, pairs, chunks = answer
        start = {"type": "http.response.start", "status": status}
        await send({**start, "headers": [(k.encode(), v.encode()) for k, v in pairs]})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


Answer = tuple[int, list[tuple[str, str]], list[bytes]]


def _json(status: int, data: Any, *extra: tuple[str, str]) -> Answer:
    return status, [("content-type", "application/json"), *extra], [json.dumps(data).encode()]


def _aws_ok(scope: Scope, headers: dict[str, str], body: bytes, want: str = "bedrock") -> bool:
    """Whether the request carries Bedrock's API key, or a SigV4 signature made with
    :data:`UPSTREAM_AWS` over the request as received."""
    auth = headers.get("authorization", "")
    if auth.startswith("Bearer "):
        return auth == f"Bearer {BEDROCK_API_KEY}"
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
    _, _, region, service, _ = parts["Credential"].split("/")
    if parts["Credential"].split("/")[0] != UPSTREAM_AWS["AWS_ACCESS_KEY_ID"]:
        return False
    if headers.get("x-amz-security-token") != UPSTREAM_AWS["AWS_SESSION_TOKEN"]:
        return False
    signed = {h: headers[h] for h in parts["SignedHeaders"].split(";") if h in headers}
    query = scope["query_string"].decode()
    url = f"http://{headers['host']}{scope['raw_path'].decode()}" + (f"?{query}" if query else "")
    request = AWSRequest(method=scope["method"], url=url, headers=signed, data=body)
    request.context["timestamp"] = headers.get("x-amz-date", "")
    creds = Credentials(
        UPSTREAM_AWS["AWS_ACCESS_KEY_ID"],
        UPSTREAM_AWS["AWS_SECRET_ACCESS_KEY"],
        UPSTREAM_AWS["AWS_SESSION_TOKEN"],
    )
    signer = SigV4Auth(creds, service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return bool(service == want and region == "us-east-1" and parts["Signature"] == expected)


def _bedrock(path: str, body: Any, ok: bool) -> Answer:
    if not ok:
        message_text = (
            "The request signature we calculated does not match the signature you provided."
        )
        return _json(
            403,
            {"message": message_text},
            (
                "x-amzn-errortype",
                "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            ),
        )
    model = path[len("/model/") :].rpartition("/")[0]
    text = last_user_text(body)
    word = text.split(" ")[0]
    rid = ("x-amzn-requestid", "bedrock-req-1")
    if word == "throttle":
        return _json(
            429,
            {"message": "Too many requests, please wait."},
            ("x-amzn-errortype", "ThrottlingException"),
            rid,
        )
    if "anthropic_version" not in body:
        return _json(
            400,
            {"message": "anthropic_version is required"},
            ("x-amzn-errortype", "ValidationException"),
        )
    if not path.endswith("/invoke-with-response-stream"):
        return _json(200, message(1, answer_text(text), model), rid)
    frames = []
    events = stream_events(1, answer_text(text), model)
    if word == "streamfail":
        events = events[:4]
    for name, data in events:
        if name == "message_stop":
            data = {**data, "amazon-bedrock-invocationMetrics": {"inputTokenCount": 11}}
        frames.append(encode_chunk(json.dumps(data).encode()))
    if word == "streamfail":
        frames.append(
            encode_exception(
                "modelStreamErrorException",
                {
                    "message": "Overloaded",
                    "originalStatusCode": 529,
                    "originalMessage": "Overloaded",
                },
            )
        )
    head = [
        ("content-type", "application/vnd.amazon.eventstream"),
        ("x-amzn-bedrock-content-type", "application/json"),
        rid,
    ]
    # Split frames across chunks anywhere, as the network does.
    joined = b"".join(frames)
    return 200, head, [joined[i : i + 37] for i in range(0, len(joined), 37)]


def _first_party(body: Any, stream: bool, model: str) -> Answer:
    text = answer_text(last_user_text(body))
    if not stream:
        return _json(200, message(1, text, model), ("request-id", "req_standin"))
    chunks = [
        f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in stream_events(1, text, model)
    ]
    return 200, [("content-type", "text/event-stream; charset=utf-8")], chunks


def _vertex(path: str, body: Any, ok: bool) -> Answer:
    if not ok:
        error = {
            "code": 401,
            "message": "Request had invalid authentication credentials.",
            "status": "UNAUTHENTICATED",
        }
        return _json(401, {"error": error})
    if last_user_text(body).split(" ")[0] == "quota":
        error = {
            "code": 429,
            "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests",
            "status": "RESOURCE_EXHAUSTED",
        }
        return _json(429, {"error": error})
    model = path.rpartition("/models/")[2].partition(":")[0]
    return _first_party(body, path.endswith(":streamRawPredict"), model)


def _foundry(body: Any, ok: bool) -> Answer:
    if not ok:
        error = {"type": "authentication_error", "message": "invalid api-key"}
        return _json(401, {"type": "error", "error": error})
    return _first_party(body, bool(body.get("stream")), body["model"])


logging.getLogger("botocore").setLevel(logging.WARNING)


def main() -> None:
    """Serve the stand-in on a free port until standard input closes (the TypeScript tests
    start it so)."""
    with PlatformStandIn() as standin:
        print(f"platform stand-in on {standin.base_url}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
