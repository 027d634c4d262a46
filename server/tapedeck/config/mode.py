"""The server's :class:`Mode`: what it does with a request, as vcrpy and pytest-recording
name the record modes (docs/recording.md)."""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    """What the server does with a request: record modes as vcrpy and pytest-recording
    name them (docs/recording.md)."""

    #: Answer from cassettes only; never call the network.
    NONE = "none"
    #: Record a cassette that does not exist yet; an existing one replays, and a request
    #: it does not answer is an error.
    ONCE = "once"
    #: Replay what matches; record what does not, adding it to its cassette.
    NEW_EPISODES = "new_episodes"
    #: Send every request upstream and re-record what the run touches.
    ALL = "all"
    #: Proxy every request upstream without writing anything.
    PASSTHROUGH = "passthrough"
    # The earlier names, kept as aliases.
    REPLAY = "none"
    AUTO = "new_episodes"
    RECORD = "all"

    @classmethod
    def _missing_(cls, value: object) -> Mode | None:
        text = str(value).strip().lower().replace("-", "_")
        return _ALIASES.get(text) or next((m for m in cls if m.value == text), None)

    @property
    def proxies(self) -> bool:
        """Whether any request may go upstream."""
        return self is not Mode.NONE

    @property
    def records(self) -> bool:
        """Whether answers from upstream are written to cassettes."""
        return self in (Mode.ONCE, Mode.NEW_EPISODES, Mode.ALL)


_ALIASES = {"replay": Mode.NONE, "auto": Mode.NEW_EPISODES, "record": Mode.ALL}
