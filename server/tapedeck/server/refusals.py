"""What tapedeck answers itself for an API request: one nothing answers (the closest
interaction's first difference), or one that breaks a rule of the API."""

from __future__ import annotations

from ..cassette.clients import identify
from ..cassette.indexed import Hit
from ..cassette.library import CassetteLibrary
from ..errors import APIError
from ..observe.exchange import MISS, Exchange, Miss
from ..record.redact import Redactor
from ..source.conversations import Conversations
from ..validation.recorded import api_answered
from .incoming import Incoming
from .logs import info
from .request import Request


def judge(
    request: Request,
    exchange: Exchange,
    hit: Hit | None,
    conversations: Conversations,
    refuse: bool,
) -> None:
    """A request that breaks a rule of the API. With ``refuse`` (``validate: error``, and
    no upstream to judge it) raise the 400, unless a recording shows the API answered such
    a request (:func:`api_answered`); otherwise the log says so, once per request."""
    answered = hit is not None and api_answered(
        request.broken, (e.interaction for e in hit.entries), conversations
    )
    if refuse and not answered:
        exchange.text = f"invalid: {', '.join(b.rule for b in request.broken)}"
        raise APIError(400, request.broken[0].message)
    rules = ", ".join(b.rule for b in request.broken)
    info(
        "%s %s breaks the API's rules (%s)%s: %s",
        request.method,
        request.path,
        rules,
        "; a recording shows the API answered such a request" if answered else "",
        request.broken[0].message,
    )


def miss(
    library: CassetteLibrary,
    redactor: Redactor,
    code: int,
    request: Request,
    incoming: Incoming,
    hint: str,
    exchange: Exchange,
) -> APIError:
    """The error (``code``: the setting miss_code) for a request nothing answers. The
    client is told the first difference from the closest interaction (and whether another
    client or release recorded it); the log line names the field, not its values."""
    cassette = request.cassette if request.cassette in library.cassettes else None
    sender = identify(incoming.header_items, request.body)
    found = library.closest(request.shape, cassette).with_client(sender)
    closest = found.redacted(redactor.value)
    exchange.text = f"miss: {closest.logged}"
    exchange.source = MISS
    exchange.miss = Miss.closest(closest, redactor)
    return APIError(
        code,
        f"tapedeck: no cassette matches {request.method} {request.path}; {closest.shown}; {hint}",
    )
