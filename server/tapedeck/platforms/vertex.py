"""Claude on Vertex AI (``AnthropicVertex``, ``@anthropic-ai/vertex-sdk``).

The clients send ``POST {base}/projects/{project}/locations/{region}/publishers/anthropic/
models/{model}:rawPredict`` (``:streamRawPredict`` when streaming) and ``.../models/
count-tokens:rawPredict``, where the base URL ends in ``/v1``
(``https://{region}-aiplatform.googleapis.com/v1``) — so with or without ``/v1`` before
``/projects``. The body has no ``model`` (it is in the path; count-tokens keeps it in the
body) and carries ``anthropic_version`` (``vertex-2023-10-16``); beta flags are the
``anthropic-beta`` header, as first-party. Answers are first-party JSON and SSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .door import FIRST_PARTY_VERSION, Door, Route

_PUBLISHER = "/publishers/anthropic/models/"
_COUNT = "count-tokens"


@dataclass(slots=True)
class VertexRoute(Route):
    """A Vertex request: ``stream`` follows ``:streamRawPredict`` when the body has none."""

    streamed: bool = False

    def found(self, body: dict[str, Any]) -> None:
        if self.streamed and "stream" not in body:
            body["stream"] = True


class Vertex(Door):
    """``…/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:{method}``."""

    name = "vertex"
    prefixes = ("/projects/", "/v1/projects/")

    def route(self, method: str, path: str) -> Route | None:
        if method != "POST":
            return None
        at = path.find(_PUBLISHER)
        if at < 0 or "/locations/" not in path[:at]:
            return None
        model, colon, specifier = path[at + len(_PUBLISHER) :].rpartition(":")
        if not colon or not model or "/" in model:
            return None
        defaults = {"anthropic-version": FIRST_PARTY_VERSION}
        dropped = ("anthropic_version",)
        if model == _COUNT and specifier == "rawPredict":
            return Route(self.name, "/v1/messages/count_tokens", None, {}, defaults, dropped)
        if specifier not in ("rawPredict", "streamRawPredict"):
            return None
        streamed = specifier == "streamRawPredict"
        return VertexRoute(self.name, "/v1/messages", model, {}, defaults, dropped, streamed)
