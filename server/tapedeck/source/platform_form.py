"""Sending a request upstream in a cloud platform's own form: the setting, and the two
hooks :mod:`tapedeck.platforms` implements (this layer is below it, so it only names them).

A :class:`PlatformForward` sets the platform's credential on the request as it will be
sent (a SigV4 signature is made again for the upstream's host); its :class:`Answer` reads
the platform's answer back as the first-party one, before the recording tap sees it.
"""

from __future__ import annotations

import enum
from typing import Protocol


class UpstreamForm(enum.StrEnum):
    """The form a platform client's request is sent upstream in (``upstream_form``)."""

    #: The platform's own form when the upstream is a platform's host, else first-party.
    AUTO = "auto"
    #: Always the first-party request its front door maps it to.
    FIRST_PARTY = "first-party"
    #: Always as the client sent it (path, query, headers, body).
    PLATFORM = "platform"


class Answer(Protocol):
    """A platform's answer read back as the first-party one (one per request)."""

    #: Why the platform's stream could not be read on, once it could not (else ``None``).
    error: str | None

    def head(
        self, status: int, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]]]:
        """The first-party status and headers (lower-case names) for the platform's; a
        stream's ``content-type`` is ``text/event-stream``."""
        ...

    def events(self, chunk: bytes) -> list[tuple[str, str]]:
        """The first-party events, ``(name, data)``, this piece of a stream completes."""
        ...

    def whole(self, body: bytes) -> bytes:
        """The first-party body of an answer read whole."""
        ...


class PlatformForward(Protocol):
    """A request sent upstream in a platform's own form."""

    async def credential(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """The headers to send to ``url``, with the platform's credential set (re-signed,
        for SigV4). Raises :class:`UpstreamError` if it cannot be."""
        ...

    def answer(self) -> Answer | None:
        """The reader of the platform's answer, or ``None`` if it is first-party already."""
        ...
