"""Record modes: which requests replay, which go upstream, and where they are recorded.

=============== ===========================================================================
``none``        replay only; a request nothing answers is a miss (404)
``once``        a cassette that does not exist yet is recorded; an existing one replays,
                and a request it does not answer is a miss
``new_episodes`` replay what matches; record what does not, adding it to its cassette
``all``         everything goes upstream; what the run touches is recorded again
``passthrough`` everything goes upstream; nothing is written
=============== ===========================================================================

A request's cassette is the one ``x-tapedeck-cassette`` names (then only it is searched),
else the test's own (``x-tapedeck-test-cassette``: searched first, then the whole library),
else one named after the request itself (:func:`tapedeck.record.names.cassette_name`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cassette.indexed import Hit
from ..cassette.library import CassetteLibrary
from ..config import Mode
from ..record.names import cassette_name
from ..record.recorder import Recorder
from .request import Request


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a request: replay ``hit``, go upstream (recording into
    ``record_to`` unless it is ``None``), or answer a miss whose message ends with ``hint``."""

    hit: Hit | None = None
    upstream: bool = False
    record_to: str | None = None
    hint: str = ""


RECORD_HINT = (
    "to record it, run with --mode new_episodes (TAPEDECK_MODE=new_episodes, or pytest "
    "--tapedeck-mode new_episodes) and a key for the upstream (ANTHROPIC_API_KEY or "
    "--upstream-api-key-env); --mode once records cassettes that do not exist yet"
)


def lookup(library: CassetteLibrary, request: Request) -> Hit | None:
    """The interactions that answer ``request``, searched where its cassette says."""
    if request.cassette is not None:
        if request.cassette not in library.cassettes:
            return None
        return library.find(request.shape, request.cassette)
    own = request.test_cassette
    if own is not None and own in library.cassettes:
        found = library.find(request.shape, own)
        if found is not None:
            return found
    return library.find(request.shape)


def decide(mode: Mode, library: CassetteLibrary, recorder: Recorder, request: Request) -> Decision:
    """What ``mode`` does with ``request``."""
    if mode is Mode.PASSTHROUGH:
        return Decision(upstream=True)
    own = request.cassette or request.test_cassette
    if mode is Mode.ALL:
        return Decision(upstream=True, record_to=own or cassette_name(request.shape))
    recorded_before = own is not None and own in library.cassettes and own not in recorder.created
    if mode is Mode.ONCE and own is not None and not recorded_before:
        return Decision(upstream=True, record_to=own)
    found = lookup(library, request)
    retrying = found is not None and recorder.retrying(found.cassette.name, found.key)
    if found is not None and not (mode.records and retrying):
        return Decision(hit=found)
    if mode is Mode.NONE:
        return Decision(hint=RECORD_HINT)
    if mode is Mode.ONCE and own is not None:
        return Decision(
            hint=f"cassette {own!r} was recorded before, so --mode once only replays it: "
            "delete it to record it again, or run with --mode new_episodes to add to it"
        )
    return Decision(upstream=True, record_to=own or cassette_name(request.shape))
