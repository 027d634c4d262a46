"""Claude on Vertex AI (``AnthropicVertex``, ``@anthropic-ai/vertex-sdk``).

The clients send ``POST {base}/projects/{project}/locations/{region}/publishers/anthropic/
models/{model}:rawPredict`` (``:streamRawPredict`` when streaming) and ``.../models/
count-tokens:rawPredict``, where the base URL ends in ``/v1``
(``https://{region}-aiplatform.googleapis.com/v1``) — so with or without ``/v1`` before
``/projects``. The body has no ``model`` (it is in the path; count-tokens keeps it in the
body) and carries ``anthropic_version`` — Vertex's documented ``vertex-2023-10-16``, or the
first-party version the SDK would have sent as a header, which it leaves out (TypeScript
removes the header; Python never sends it); beta flags are the ``anthropic-beta`` header,
as first-party. Answers are first-party JSON and SSE, and errors the first party's, but for
the 401, 403 and 429 that Google's front end answers in Google's error shape
(:mod:`tapedeck.platforms.google_errors`).

The first-party request gets ``anthropic-version`` from the body (``vertex-2023-10-16``
being ``2023-06-01``) unless the client sent the header, and the model by its first-party
id: Vertex's dated ids put ``@`` where the first party's put ``-``
(``claude-sonnet-4-5@20250929`` is ``claude-sonnet-4-5-20250929``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .door import FIRST_PARTY_VERSION, Door, Reframe, Route
from .google_errors import VERTEX_STATUSES, GoogleErrors

_PUBLISHER = "/publishers/anthropic/models/"
_DATED = re.compile(r"(.+)@(\d{8})")


def first_party_model(model: str) -> str:
    """The first-party id of a Vertex model id (``name@YYYYMMDD`` -> ``name-YYYYMMDD``)."""
    dated = _DATED.fullmatch(model)
    return f"{dated[1]}-{dated[2]}" if dated else model


_COUNT = "count-tokens"


#: Vertex's own ``anthropic_version`` values, as the first-party versions they stand for.
VERSIONS = {"vertex-2023-10-16": FIRST_PARTY_VERSION}


@dataclass(slots=True)
class VertexRoute(Route):
    """A Vertex request: the version from the body; ``stream`` follows
    ``:streamRawPredict`` when the body has none."""

    streamed: bool = False

    def found(self, body: dict[str, Any]) -> None:
        version = body.get("anthropic_version")
        if isinstance(version, str) and version:
            self.defaults["anthropic-version"] = VERSIONS.get(version, version)
        if self.streamed and "stream" not in body:
            body["stream"] = True

    def reframe(self) -> Reframe | None:
        """401, 403 and 429 in Google's error shape (Vertex's own front end answers them);
        everything else as the first-party API sent it."""
        return GoogleErrors(VERTEX_STATUSES)


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
            path = "/v1/messages/count_tokens"
            return VertexRoute(self.name, path, None, {}, defaults, dropped)
        if specifier not in ("rawPredict", "streamRawPredict"):
            return None
        streamed = specifier == "streamRawPredict"
        model = first_party_model(model)
        return VertexRoute(self.name, "/v1/messages", model, {}, defaults, dropped, streamed)
