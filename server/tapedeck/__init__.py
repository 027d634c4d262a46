"""tapedeck: record, replay and break the Anthropic Messages API, for tests.

The public API::

    from tapedeck import Settings, create_app, CassetteLibrary

    app = create_app(Settings(cassettes=Path("cassettes")))   # an ASGI app

    with tapedeck.serve(cassettes="cassettes", timing="instant") as server:
        server.base_url                                        # a real server, on a thread

How a request flows through the package: docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cassette.library import CassetteLibrary
from .cassette.load import load_cassette, parse_cassette
from .cassette.matching import MatchRules
from .cassette.model import Cassette, Interaction, RecordedEvent, RecordedRequest, RecordedResponse
from .config import Mode, Settings
from .errors import (
    APIError,
    BindError,
    CassetteError,
    ConfigError,
    FaultSpecError,
    LibraryError,
    SpecError,
    TapedeckError,
    UpstreamError,
)
from .server.app import create_app
from .server.runner import ServerThread, serve
from .shaping.timing import Timing
from .version import __version__

if TYPE_CHECKING:
    from .observe.entries import JournalEntry

__all__ = [
    "APIError",
    "BindError",
    "Cassette",
    "CassetteError",
    "CassetteLibrary",
    "ConfigError",
    "FaultSpecError",
    "Interaction",
    "JournalEntry",
    "LibraryError",
    "MatchRules",
    "Mode",
    "RecordedEvent",
    "RecordedRequest",
    "RecordedResponse",
    "ServerThread",
    "Settings",
    "SpecError",
    "TapedeckError",
    "Timing",
    "UpstreamError",
    "__version__",
    "create_app",
    "load_cassette",
    "parse_cassette",
    "serve",
]


def __getattr__(name: str) -> Any:
    # The journal's typed entries are for tests reading the journal: loaded when asked for.
    if name == "JournalEntry":
        from .observe.entries import JournalEntry

        return JournalEntry
    raise AttributeError(f"module 'tapedeck' has no attribute {name!r}")
