"""Every exception tapedeck raises, in one tree.

::

    TapedeckError
    ├── ConfigError ············ a setting that cannot be used; names its source
    │                            (``--port``, ``TAPEDECK_PORT``, ``tapedeck.yaml:3: port``)
    ├── SpecError (ValueError) · a fault or timing spec that cannot be parsed
    │   └── FaultSpecError
    ├── UsageError ············· a command-line tool asked for something it cannot do
    ├── CassetteError ·········· one cassette file that cannot be used: ``file:line: problem``
    │   └── YAMLSourceError ···· the text is not valid YAML (no file name yet)
    ├── LibraryError ··········· a cassette directory with broken cassettes; holds each one
    ├── UnsafeNameError (ValueError)  a cassette name that would leave the cassette directory
    ├── BindError ·············· the server cannot listen on the address
    │   └── PortInUse ·········· another tapedeck or program holds the port
    ├── UpstreamError ·········· the upstream API cannot be reached or did not answer
    ├── RecordingError ········· a recording could not be written; names the cassette
    ├── StreamError ············ an ``error`` event inside a recorded event stream
    ├── EventStreamError ······· bytes that are no AWS event-stream message (Bedrock framing)
    ├── UnusualJSON ············ internal: a value whose JSON text is left to ``json.dumps``
    ├── APIError ··············· answered to the client in the API's own error shape
    └── StreamCut ·············· not an error: drop the connection mid-body, on purpose

Operators see the first group (with the file, line or option and the fix); clients see
:class:`APIError` as ``{"type": "error", "error": {...}}`` with the status it carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "APIError",
    "BindError",
    "CassetteError",
    "ConfigError",
    "EventStreamError",
    "FaultSpecError",
    "LibraryError",
    "PortInUse",
    "RecordingError",
    "SpecError",
    "StreamCut",
    "StreamError",
    "TapedeckError",
    "UnsafeNameError",
    "UnusualJSON",
    "UpstreamError",
    "UsageError",
    "YAMLSourceError",
]


class TapedeckError(Exception):
    """The root of every exception tapedeck raises on purpose."""


class ConfigError(TapedeckError):
    """A setting that cannot be used; the message names its source and what was expected."""


class SpecError(TapedeckError, ValueError):
    """A spec string (timing, fault) that cannot be parsed; says what and how to fix it."""


class FaultSpecError(SpecError):
    """A fault spec that cannot be parsed."""


class UsageError(TapedeckError):
    """A command-line tool was asked for something it cannot do (exit status 2)."""


class CassetteError(TapedeckError):
    """A cassette file that cannot be used: ``str()`` is ``file:line: problem``."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")

    def __reduce__(self) -> tuple[type[CassetteError], tuple[str, int, str]]:
        # Sent back from the processes that parse a large library (cassette/index.py).
        return (type(self), (self.file, self.line, self.message))


class YAMLSourceError(TapedeckError):
    """The text is not valid YAML (or repeats a key); ``line`` is 1-based, 0 if unknown."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class LibraryError(TapedeckError):
    """One or more cassettes could not be loaded; ``errors`` holds each problem."""

    def __init__(self, errors: Sequence[CassetteError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in errors))


class UnsafeNameError(TapedeckError, ValueError):
    """A cassette name that would reach outside the cassette directory."""


class BindError(TapedeckError):
    """The address could not be bound (in use, not local, not permitted)."""


class PortInUse(BindError):
    """The port is taken: another tapedeck, or another program, listens on it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"cannot listen on {host}:{port}: the port is in use (another tapedeck, or "
            "another program, holds it); choose another port (0 picks a free one)"
        )


class UpstreamError(TapedeckError):
    """The upstream could not be reached or did not answer; the message names it and says
    why. ``status`` is what the client is answered: 502, or 504 when it timed out."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class RecordingError(TapedeckError):
    """A recording could not be written: ``cassette`` names it, ``reason`` says why;
    ``disk`` when the disk refused it (full, read-only), not the cassette's name."""

    def __init__(self, cassette: str, reason: str, disk: bool = False) -> None:
        self.cassette = cassette
        self.reason = reason
        self.disk = disk
        super().__init__(f"could not record cassette {cassette!r}: {reason}")


class StreamError(TapedeckError):
    """An ``error`` event arrived in the stream.

    ``data`` is the event's data as sent, e.g.
    ``{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}``;
    ``type`` and ``message`` are taken from its ``error`` object when there is one.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        found = data.get("error") if isinstance(data, Mapping) else None
        error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        self.type: str | None = error.get("type")
        self.message: str | None = error.get("message")
        super().__init__(f"{self.type}: {self.message}" if error else f"error event: {data!r}")


#: ``error.type`` for each status, as the API uses them.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """The API's ``error.type`` for an HTTP status (unlisted 4xx/5xx fall back by class)."""
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


class EventStreamError(TapedeckError):
    """Bytes that are not an AWS event-stream message (a bad length, CRC or header): the
    decoder stops there and keeps the reason (:mod:`tapedeck.wire.eventstream`)."""


class UnusualJSON(TapedeckError):
    """A value whose JSON text ``cassette/json_text.py`` leaves to ``json.dumps`` (a mapping
    key that is not text); internal, never seen outside it."""


class APIError(TapedeckError):
    """Raised anywhere in request handling; answered as an API-shaped error response.

    ``error_type`` defaults to the API's type for ``status`` (see
    :func:`error_type_for`).
    """

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_type_for(status)
        self.headers = headers


class StreamCut(TapedeckError):
    """Raised after a partial body to make the server drop the connection on purpose."""
