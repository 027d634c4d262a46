"""Microsoft Foundry (``AnthropicFoundry``, ``@anthropic-ai/foundry-sdk``) and Amazon
Bedrock's Mantle endpoint (``AnthropicBedrockMantle``): the first-party API under
``/anthropic``.

Foundry's base URL is ``https://{resource}.services.ai.azure.com/anthropic/``, Mantle's
``https://bedrock-mantle.{region}.api.aws/anthropic``; both send the first-party paths,
headers and bodies after it (``/anthropic/v1/messages``). The credential differs: Foundry
sends its key as both ``x-api-key`` and ``api-key`` (or an Entra ID bearer token), Mantle a
bearer API key or a SigV4 signature (``authorization``, ``x-amz-date``,
``x-amz-security-token``). The paths are the same, so one door serves both.
"""

from __future__ import annotations

from .door import Door, Route

_PREFIX = "/anthropic/v1/"


class AnthropicPrefix(Door):
    """``/anthropic/v1/…`` -> ``/v1/…``, for Foundry and Bedrock Mantle."""

    name = "anthropic-prefix"
    prefixes = (_PREFIX,)

    def route(self, method: str, path: str) -> Route | None:
        if not path.startswith(_PREFIX):
            return None
        return Route(self.name, path[len("/anthropic") :])
