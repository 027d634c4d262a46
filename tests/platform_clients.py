"""The SDK's platform clients, each pointed at a tapedeck as its users would point it.

Each entry makes a client for a server's base URL and says where its Messages resource is
(Mantle has only ``beta.messages``). The credentials are recognisable fakes: the secret
tests look for them on disk and in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic

#: Fake platform credentials: none may reach a cassette or the log.
GOOGLE_TOKEN = "ya29.PLATFORM-GOOGLE-TOKEN-42"
FOUNDRY_KEY = "foundry-PLATFORM-KEY-42"
AWS_ACCESS_KEY = "AKIDPLATFORMEXAMPLE42"
AWS_SECRET_KEY = "PLATFORM-AWS-SECRET-42"
AWS_SESSION_TOKEN = "PLATFORM-AWS-SESSION-TOKEN-42"
MANTLE_KEY = "mantle-PLATFORM-KEY-42"
SECRETS = (GOOGLE_TOKEN, FOUNDRY_KEY, AWS_ACCESS_KEY, AWS_SECRET_KEY, AWS_SESSION_TOKEN, MANTLE_KEY)
_AWS = {
    "aws_access_key": AWS_ACCESS_KEY,
    "aws_secret_key": AWS_SECRET_KEY,
    "aws_session_token": AWS_SESSION_TOKEN,
    "aws_region": "us-east-1",
}


@dataclass(frozen=True)
class Platform:
    """One platform client: how to make it for a base URL, and its messages resource."""

    name: str
    make: Callable[..., Any]
    beta_only: bool = False

    def client(self, base_url: str, fault: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("max_retries", 0)
        if fault is not None:
            kwargs["default_headers"] = {"x-tapedeck-fault": fault}
        return self.make(base_url, **kwargs)

    def messages(self, client: Any) -> Any:
        return client.beta.messages if self.beta_only else client.messages


def _vertex(prefix: str) -> Callable[..., Any]:
    def make(base: str, **kw: Any) -> Any:
        return anthropic.AnthropicVertex(
            base_url=base + prefix,
            region="us-east5",
            project_id="tapedeck-project",
            access_token=GOOGLE_TOKEN,
            **kw,
        )

    return make


def _google_cloud(base: str, **kw: Any) -> Any:
    return anthropic.AnthropicGoogleCloud(
        base_url=f"{base}/v1/projects/tapedeck-project/locations/global/workspaces/wrk/invoke",
        project="tapedeck-project",
        location="global",
        workspace_id="wrk",
        token_provider=lambda: GOOGLE_TOKEN,
        **kw,
    )


def _foundry(base: str, **kw: Any) -> Any:
    return anthropic.AnthropicFoundry(base_url=base + "/anthropic/", api_key=FOUNDRY_KEY, **kw)


def _mantle_sigv4(base: str, **kw: Any) -> Any:
    return anthropic.AnthropicBedrockMantle(base_url=base + "/anthropic", **_AWS, **kw)


def _mantle_key(base: str, **kw: Any) -> Any:
    return anthropic.AnthropicBedrockMantle(
        base_url=base + "/anthropic", api_key=MANTLE_KEY, aws_region="us-east-1", **kw
    )


def _aws(base: str, **kw: Any) -> Any:
    return anthropic.AnthropicAWS(base_url=base, workspace_id="wrk", **_AWS, **kw)


def _bedrock(base: str, **kw: Any) -> Any:
    return anthropic.AnthropicBedrock(base_url=base, **_AWS, **kw)


PLATFORMS = [
    Platform("vertex", _vertex("")),
    Platform("vertex-v1", _vertex("/v1")),
    Platform("google-cloud", _google_cloud),
    Platform("foundry", _foundry),
    Platform("mantle-sigv4", _mantle_sigv4, beta_only=True),
    Platform("mantle-key", _mantle_key, beta_only=True),
    Platform("aws-sigv4", _aws),
]

#: The client the conformance table runs each platform through (tests/conformance/README.md,
#: "Platforms"), by the table's platform name: Vertex with the ``/v1`` its default base URL
#: ends in, Mantle and AWS signing with SigV4.
TABLE_CLIENTS = {
    "bedrock": Platform("bedrock", _bedrock),
    "vertex": PLATFORMS[1],
    "google_cloud": PLATFORMS[2],
    "foundry": PLATFORMS[3],
    "mantle": PLATFORMS[4],
    "aws": PLATFORMS[6],
}
#: The class of each platform's client, and the first ``anthropic`` release known to have
#: it: an older release (the floor, 0.53, has only Bedrock and Vertex) skips the platform.
CLASSES = {
    "bedrock": "AnthropicBedrock",
    "vertex": "AnthropicVertex",
    "google_cloud": "AnthropicGoogleCloud",
    "foundry": "AnthropicFoundry",
    "mantle": "AnthropicBedrockMantle",
    "aws": "AnthropicAWS",
}
