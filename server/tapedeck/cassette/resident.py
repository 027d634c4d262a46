"""What the library keeps of its cassettes' responses: within ``library_max_bytes``.

Matching needs a cassette's requests, not its responses, and the responses are most of its
bytes (a recording's 1 MB answer, a stream's events). So the library counts each cassette
it holds whole once it is used — it answered a request, was recorded, or was read again —
at :func:`weight`, the least recently used first out (one loaded but never used holds what
start-up read of it, the library index's part, and is not counted). Past the bound a
cassette is *evicted*: the library keeps it :func:`light`, its requests still indexed
(requests go on matching it; a miss still explains itself with it), and reads and checks
its file again the next time it answers a request (:mod:`.on_demand`), as ``load: lazy``
reads a file on first use. Using one never evicts it, so one larger than the bound is held
while it is the last one used.

The requests evicted cassettes keep are bounded too, by ``library_request_max_bytes``:
past it those evicted first become :func:`bare` — no request bodies, indexed by the
digests of their shapes' keys — so a run recording thousands of large requests keeps a
few dozen bytes of each. They still match as before (and are read again to answer); a
miss across the directory is explained without them (its message says how many were not
compared), one within a named cassette reads the file again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from .json_text import length
from .lazy_events import LazyEvents
from .model import Cassette, RecordedRequest, RecordedResponse

#: The default bound (``library_max_bytes``): the ~100 typical stream cassettes (18 kB, 100
#: events) or five 1 MB recordings used last are held whole (a suite seldom comes back to a
#: cassette after that many others); with the journal's 32 MiB, a server stays within the
#: 64 MB the memory scenario allows (tests/reliability/memory.py).
DEFAULT_LIBRARY_MAX_BYTES = 16 * 1024 * 1024
#: What a cassette used takes in memory: its file's size this many times (the responses
#: parsed, rendered for the wire, and the copy the plan of an instant replay holds), and
#: :data:`EVENT_BYTES` per event (a parsed event's dictionaries and strings). Measured
#: without the bound: a 1 MB answer, 1.2 MB recorded and 2.3 MB once replayed; a stream
#: cassette of 18 kB and 100 events, about 154 kB once replayed.
IN_MEMORY = 3
EVENT_BYTES = 1024
#: The default bound on the requests evicted cassettes keep (``library_request_max_bytes``):
#: a few hundred typical requests (5-20 kB), or two 1 MB ones; with the journal's 32 MiB and
#: ``library_max_bytes``, the memory scenario grows 60 MB (16 MiB here: 70 MB, over its 64).
DEFAULT_REQUEST_MAX_BYTES = 4 * 1024 * 1024
#: What an evicted cassette's request takes: its body's JSON size this many times (the
#: parsed body, and the key it is indexed by), and :data:`REQUEST_BYTES` more each.
REQUEST_IN_MEMORY = 2
REQUEST_BYTES = 512

#: The body fields an evicted JSON response keeps: what says which reply it was.
_KEPT_FIELDS = ("type", "id")


class Residency:
    """The cassettes held whole, by name, with their weights (bytes), least recently used
    first; :meth:`use` says which to evict to stay within ``budget``."""

    def __init__(
        self,
        budget: int = DEFAULT_LIBRARY_MAX_BYTES,
        request_budget: int = DEFAULT_REQUEST_MAX_BYTES,
    ) -> None:
        self.budget = budget
        #: The bytes counted for the cassettes held whole.
        self.held = 0
        self._weights: OrderedDict[str, int] = OrderedDict()
        self.request_budget = request_budget
        #: The bytes counted for the requests evicted cassettes keep.
        self.parked = 0
        #: Evicted cassettes still holding their requests, by weight, evicted first first.
        self._parked: OrderedDict[str, int] = OrderedDict()

    def use(self, name: str, weight: int) -> list[str]:
        """Hold ``name`` whole (``weight`` bytes), as the one used last; the names to evict
        (least recently used first, never ``name``) so the others fit in the budget."""
        weights = self._weights
        if weights and next(reversed(weights)) == name and weights[name] == weight:
            return []  # used again, as most requests are: nothing moves
        self.parked -= self._parked.pop(name, 0)
        old = weights.pop(name, None)
        self.held += weight - (old or 0)
        weights[name] = weight
        evicted = []
        while self.held > self.budget and len(weights) > 1:
            gone, size = weights.popitem(last=False)
            self.held -= size
            evicted.append(gone)
        return evicted

    def park(self, name: str, weight: int) -> list[str]:
        """``name`` was evicted, keeping its requests (``weight`` bytes): the evicted
        cassettes whose requests to drop (evicted first first, perhaps ``name`` itself) so
        the others' fit in ``request_budget``."""
        self.parked += weight - self._parked.pop(name, 0)
        self._parked[name] = weight
        dropped = []
        while self.parked > self.request_budget and self._parked:
            gone, size = self._parked.popitem(last=False)
            self.parked -= size
            dropped.append(gone)
        return dropped

    def __contains__(self, name: object) -> bool:
        return name in self._weights

    def __len__(self) -> int:
        return len(self._weights)


def weight(cassette: Cassette) -> int:
    """The bytes ``cassette`` counts for, held whole and used."""
    events = sum(len(i.response.events or ()) for i in cassette.interactions)
    return IN_MEMORY * cassette.size + EVENT_BYTES * events


def request_weight(cassette: Cassette) -> int:
    """The bytes an evicted ``cassette``'s requests count for."""
    return sum(
        REQUEST_IN_MEMORY * length(i.request.body) + REQUEST_BYTES for i in cassette.interactions
    )


def bare(cassette: Cassette) -> Cassette:
    """``cassette`` (evicted: :func:`light`) without its requests' bodies, query and
    headers: what its entries, ``/_tapedeck/unused`` and a miss's note need of it. Its
    interactions are indexed by their shapes' digests (:meth:`~.matching.RequestShape.
    stripped`); never served nor compared with a request: the library reads the file
    again first."""
    return replace(
        cassette,
        interactions=tuple(replace(i, request=_bare(i.request)) for i in cassette.interactions),
    )


def _bare(request: RecordedRequest) -> RecordedRequest:
    return RecordedRequest(request.method, request.path, match=request.match, client=request.client)


def light(cassette: Cassette) -> Cassette:
    """``cassette`` without its responses' bodies, texts and events: its requests, response
    heads and what names each reply (a JSON body's ``type`` and ``id``, a stream's first
    event). Never served: the library reads the file again first."""
    return replace(
        cassette,
        interactions=tuple(replace(i, response=_light(i.response)) for i in cassette.interactions),
    )


def same_requests(read: Cassette, held: Cassette) -> Cassette | None:
    """``read`` (its file read again) with the request objects of ``held``, if its requests
    are ``held``'s (then it indexes as ``held`` does, and what the library worked out from
    them shares them, not a second copy each); ``None`` if they differ."""
    if read.normalize != held.normalize or [i.request for i in read.interactions] != [
        i.request for i in held.interactions
    ]:
        return None
    return replace(
        read,
        interactions=tuple(
            replace(i, request=h.request)
            for i, h in zip(read.interactions, held.interactions, strict=True)
        ),
    )


def _light(response: RecordedResponse) -> RecordedResponse:
    events = response.events
    if events is not None and not isinstance(events, LazyEvents):  # those are in the store
        events = tuple(events[:1])
    body = response.body
    body = {k: body[k] for k in _KEPT_FIELDS if k in body} if isinstance(body, dict) else None
    return replace(response, body=body, text=None, events=events)
