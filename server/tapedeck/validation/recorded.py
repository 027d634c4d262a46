"""The API's own verdict, where a recording holds it.

tapedeck's rules are read from the API's documentation; the API itself is the judge. An
interaction that tapedeck recorded from the upstream (it has ``recorded_at``) holds a
request the API answered — a 2xx, or its own error, which the recording replays. When that
recorded request breaks the same rules as the request being refused, the rule is stricter
than the API (``thinking_first`` before adaptive thinking was understood is the example), so
the request is answered from the recording, not refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..cassette.model import Interaction
from . import check
from .model import Broken, Known


def _header(interaction: Interaction, name: str) -> str | None:
    return next((v for k, v in interaction.request.headers if k.lower() == name), None)


def api_answered(
    broken: Iterable[Broken], interactions: Iterable[Interaction], known: Known
) -> bool:
    """True if one of ``interactions`` was recorded from the upstream and its request breaks
    every rule in ``broken`` too: the API answered such a request."""
    rules = {b.rule for b in broken}
    for interaction in interactions:
        if interaction.recorded_at is None:
            continue  # written by hand (tapedeck new, an editor): the API never saw it
        request = interaction.request
        if request.method != "POST" or request.path != "/v1/messages":
            continue
        recorded = check(
            request.body,
            _header(interaction, "anthropic-beta"),
            known,
            _header(interaction, "anthropic-version"),
        )
        if rules <= {b.rule for b in recorded}:
            return True
    return False
