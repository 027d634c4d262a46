"""Platform front doors: the cloud platforms' request shapes served as first-party ones.

The SDKs' platform clients (Vertex, Foundry, AWS, Bedrock Mantle, Google Cloud, Bedrock)
send the Messages API under other paths, with other headers and, for some, other body
fields and response framing. A front door maps such a request onto the first-party request
(``POST /v1/messages`` with ``model`` in the body, ``stream``, the ``anthropic-version``
and ``anthropic-beta`` headers) *before* the handler sees it, so matching, cassettes,
recording, faults and the journal work unchanged and one cassette answers every client;
and it maps the response back (headers; a body re-encoded for a platform whose framing
differs).

Adding a platform:

1. A module here with a :class:`~tapedeck.platforms.door.Door` subclass: its ``prefixes``
   (the paths it may claim, checked first on every request) and ``route(method, path)``,
   which returns a :class:`~tapedeck.platforms.door.Route` for the platform's requests:
   the first-party path, the model the path names, headers to set, body fields to drop.
   A subclass of ``Route`` overrides ``found`` to read more of the parsed body (e.g.
   ``anthropic_beta`` into the header).
2. For a framing of its own, a :class:`~tapedeck.platforms.door.Reframe` (``Route.reframe``
   makes a new one per request): it gets the status and headers, then every piece of the
   first-party body (SSE or JSON, as the writer sends it, with ``more``), and returns what
   the client gets. Faults need nothing more: they act on the first-party response first.
3. For recording through the platform (``upstream_form``,
   :mod:`tapedeck.platforms.forwarding`): its hosts in ``PLATFORM_HOSTS``, and, if its
   answers are not first-party, an :class:`~tapedeck.source.platform_form.Answer` that reads
   them back as first-party (``PlatformSend.answer``; Bedrock's is
   :mod:`tapedeck.platforms.bedrock_answer`).
4. The door in :data:`DOORS` (order matters only if two could claim one path), its secret
   headers in ``record/redact.py``'s ``SECRET_HEADERS``, a test file
   ``tests/test_platforms_<name>.py`` and a section in ``docs/platforms.md``.
"""

from __future__ import annotations

from .anthropic_prefix import AnthropicPrefix
from .bedrock import Bedrock
from .door import Door, Reframe, Route, enter
from .google_cloud import GoogleCloud
from .vertex import Vertex

#: Every front door, asked in order; the first whose ``route`` answers serves the request.
#: (AWS — ``AnthropicAWS`` — sends the first-party paths and needs none.)
DOORS: tuple[Door, ...] = (Vertex(), GoogleCloud(), AnthropicPrefix(), Bedrock())
#: Every path prefix a door claims: anything else is not looked at further.
PREFIXES = tuple(sorted({p for door in DOORS for p in door.prefixes}))


def find(method: str, path: str) -> Route | None:
    """The route of the first door that claims ``method path``, or ``None`` (at once for
    a path no door's prefix starts, such as ``/v1/messages``)."""
    if not path.startswith(PREFIXES):
        return None
    for door in DOORS:
        if path.startswith(door.prefixes):
            route = door.route(method, path)
            if route is not None:
                return route
    return None


__all__ = ["DOORS", "PREFIXES", "Door", "Reframe", "Route", "enter", "find"]
