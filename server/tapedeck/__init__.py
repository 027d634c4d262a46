"""tapedeck: replay the Anthropic Messages API from YAML cassettes, for tests.

The public API::

    from tapedeck import Settings, create_app, CassetteLibrary

    app = create_app(Settings(cassettes=Path("cassettes")))   # an ASGI app

    with tapedeck.serve(cassettes="cassettes", timing="instant") as server:
        server.base_url                                        # a real server, on a thread
"""

from __future__ import annotations

__version__ = "0.1.0"

from .app import create_app
from .cassette import Cassette, Interaction, RecordedEvent, RecordedRequest, RecordedResponse
from .cassette_load import CassetteError, load_cassette, parse_cassette
from .embed import serve
from .library import CassetteLibrary, LibraryError
from .matching import MatchRules
from .settings import ConfigError, Mode, Settings
from .timing import Timing

__all__ = [
    "Cassette",
    "CassetteError",
    "CassetteLibrary",
    "ConfigError",
    "Interaction",
    "LibraryError",
    "MatchRules",
    "Mode",
    "RecordedEvent",
    "RecordedRequest",
    "RecordedResponse",
    "Settings",
    "Timing",
    "__version__",
    "create_app",
    "load_cassette",
    "parse_cassette",
    "serve",
]
