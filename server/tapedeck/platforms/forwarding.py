"""Recording through a platform: a platform client's request sent upstream as it came.

With ``upstream_form`` ``platform`` — or ``auto`` and an upstream whose host is a
platform's (:func:`platform_host`) — a request a front door mapped goes upstream in the
platform's own form: the client's path (percent-encoding kept), query, headers and body,
after the upstream URL. Its credential is the client's, or:

- a SigV4 signature is made again for the upstream's host (:mod:`.sigv4`);
- with ``upstream_api_key_env``, the key from that variable goes in the platform's header
  (:func:`key_headers`), in place of the client's credential.

The answer is read back as the first-party one before the recording tap (Bedrock's by
:mod:`.bedrock_answer`, a Google front end's error by :class:`GoogleAnswer`), so the
cassette holds the first-party request and answer, as a recording through any door does.
A request no door mapped (``AnthropicAWS`` sends the first-party paths) goes in the
first-party form, but a SigV4 signature on it is made again all the same.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import error_type_for
from ..source.platform_form import Answer, UpstreamForm
from ..source.upstream import UpstreamConfig
from ..wire.sse_decode import SSEDecoder
from .bedrock_answer import BedrockAnswer, first_party_error
from .door import PlatformRequest
from .sigv4 import SIGNATURE_HEADERS, Resigner, is_signed

#: The platforms' API hosts, from the SDKs' platform clients' default base URLs.
PLATFORM_HOSTS = (
    re.compile(r"bedrock-runtime(-fips)?\.[a-z0-9-]+\.amazonaws\.com"),  # Bedrock
    re.compile(r"bedrock-mantle\.[a-z0-9-]+\.api\.aws"),  # Bedrock Mantle
    re.compile(r"aws-external-anthropic\.[a-z0-9-]+\.api\.aws"),  # AWS
    re.compile(r"([a-z0-9-]+-)?aiplatform(\.(us|eu)\.rep)?\.googleapis\.com"),  # Vertex
    re.compile(r"claude\.googleapis\.com"),  # Google Cloud
    re.compile(r"[a-z0-9-]+\.services\.ai\.azure\.com"),  # Foundry
)
_FOUNDRY = ".services.ai.azure.com"
_CREDENTIALS = frozenset({"x-api-key", "api-key"}) | SIGNATURE_HEADERS


@functools.cache
def platform_host(base_url: str) -> bool:
    """Whether ``base_url``'s host is one of :data:`PLATFORM_HOSTS`."""
    host = (urlsplit(base_url).hostname or "").lower()
    return any(p.fullmatch(host) for p in PLATFORM_HOSTS)


def in_platform_form(config: UpstreamConfig) -> bool:
    """Whether requests go upstream in their platform's form, under ``config``."""
    if config.form == UpstreamForm.AUTO:
        return platform_host(config.base_url)
    return config.form == UpstreamForm.PLATFORM


def key_headers(platform: str | None, base_url: str, sent: set[str], key: str) -> dict[str, str]:
    """The headers ``upstream_api_key_env``'s ``key`` goes in, for ``platform`` (a door's
    name; ``None``: no door): Foundry's ``api-key`` (and ``x-api-key``, as its SDKs send),
    a bearer token for Bedrock's API keys, Vertex's and Google's access tokens and Mantle's
    keys, and ``x-api-key`` for a first-party path (AWS)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if platform is None:
        return {"x-api-key": key}
    if platform == "anthropic-prefix" and (host.endswith(_FOUNDRY) or "api-key" in sent):
        return {"api-key": key, "x-api-key": key}
    return {"authorization": f"Bearer {key}"}


@dataclass(frozen=True, slots=True)
class PlatformSend:
    """One request's :class:`~tapedeck.source.platform_form.PlatformForward`."""

    #: The door's name, ``None`` for a first-party request (signed by ``AnthropicAWS``).
    platform: str | None
    config: UpstreamConfig
    resigner: Resigner

    async def credential(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """``headers`` with the credential set: the configured key, else the client's own
        (a SigV4 signature made again for ``url``)."""
        key = self.config.api_key
        if key:
            names = {k for k, _ in headers}
            kept = [(k, v) for k, v in headers if k not in _CREDENTIALS]
            given = key_headers(self.platform, self.config.base_url, names, key)
            return kept + list(given.items())
        authorization = next((v for k, v in headers if k == "authorization"), None)
        if authorization is not None and is_signed(authorization):
            return await self.resigner.sign(method, url, headers, body, authorization)
        return headers

    def answer(self) -> Answer | None:
        """Bedrock's reader, a Google front end's (errors), or none (first-party already)."""
        if self.platform == "bedrock":
            return BedrockAnswer()
        if self.platform in ("vertex", "google-cloud"):
            return GoogleAnswer()
        return None


@dataclass(slots=True)
class GoogleAnswer:
    """Vertex and Google Cloud answer in the first-party form, but for the errors Google's
    own front end sends (``{"error": {"code", "message", "status"}}``, e.g. a quota's 429
    ``RESOURCE_EXHAUSTED``): those become the first-party error of the same status."""

    error: str | None = None
    _status: int = 200
    _decoder: SSEDecoder = field(default_factory=SSEDecoder)

    def head(
        self, status: int, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]]]:
        self._status = status
        return status, headers

    def events(self, chunk: bytes) -> list[tuple[str, str]]:
        return [(e.event, e.data) for e in self._decoder.feed(chunk)]

    def whole(self, body: bytes) -> bytes:
        if self._status < 400:
            return body
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            return body
        if isinstance(parsed, list) and len(parsed) == 1:  # Vertex's streaming errors
            parsed = parsed[0]
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if not isinstance(error, dict) or "status" not in error or parsed.get("type"):
            return body
        message = str(error.get("message", error["status"]))
        return first_party_error(error_type_for(self._status), message).encode()


def platform_send(
    original: PlatformRequest | None,
    authorization: str | None,
    config: UpstreamConfig,
    resigner: Resigner,
) -> PlatformSend | None:
    """How a request goes upstream in its platform's form (``original``: what the client
    sent, if a door mapped it), or ``None`` for the first-party form."""
    if not in_platform_form(config):
        return None
    if original is not None:
        return PlatformSend(original.route.platform, config, resigner)
    if authorization is not None and is_signed(authorization):
        return PlatformSend(None, config, resigner)
    return None
