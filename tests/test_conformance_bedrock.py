"""The conformance table through `AnthropicBedrock` (platform `bedrock`).

tests/conformance/README.md, "Platforms", says what runs; tests/platform_clients.py makes
the client."""

from conformance_suite import suite

globals().update(suite("bedrock"))
