"""Running tapedeck inside another Python program: :func:`serve`.

::

    import anthropic
    import tapedeck

    with tapedeck.serve(cassettes="tests/cassettes", timing="instant") as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="test")
        ...

The arguments are the settings of ``tapedeck serve`` (README, "Running the server"), parsed
exactly as the command line parses them, so ``timing="speed=10"``, ``faults="ping:every=5"``
and ``mode="auto"`` work and a bad value raises :class:`~tapedeck.settings.ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .faults import Fault
from .runner import ServerThread
from .settings import OPTIONS, ConfigError, Settings, resolve
from .timing import Timing

__all__ = ["serve", "settings_from"]


def _as_text(value: Any) -> Any:
    """Already-parsed values (paths, timings, faults, enums) back to the text a flag gives."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Fault):
        return value.text
    if isinstance(value, Timing):
        return str(value)
    if isinstance(value, list | tuple):
        return [v.text if isinstance(v, Fault) else v for v in value]
    return value


def settings_from(
    options: Mapping[str, Any], *, config: str | os.PathLike[str] | None = None
) -> Settings:
    """:class:`Settings` from keyword-style options, parsed like ``tapedeck serve``'s flags.

    Keys are the config-file keys (``cassettes``, ``mode``, ``timing``, ``faults``, ``host``,
    ``port``, ``sequence_end``, ...); ``None`` means "not given". Values may be text, as on the
    command line, or already parsed (a :class:`~pathlib.Path`, a
    :class:`~tapedeck.timing.Timing`, a list of fault specs). The environment is not read.
    Options win over the ``config`` file, which wins over the defaults.

    >>> settings_from({"timing": "instant", "faults": "ping:every=5", "port": 0}).port
    0
    >>> settings_from({"timing": "fast"})
    Traceback (most recent call last):
    tapedeck.settings.ConfigError: timing: invalid timing 'fast': expected 'recorded', ...
    """
    known = {o.key for o in OPTIONS}
    unknown = sorted(set(options) - known)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ConfigError(
            f"unknown setting(s) {names} (known settings: {', '.join(o.key for o in OPTIONS)})"
        )
    flags = {key: _as_text(value) for key, value in options.items()}
    try:
        return resolve(flags, env={}, config_file=Path(config) if config is not None else None)
    except ConfigError as exc:
        # resolve() names the source as a command-line flag; here it was a keyword argument.
        message = str(exc)
        for option in OPTIONS:
            if message.startswith(option.flag + ": "):
                message = option.key + message[len(option.flag) :]
                break
        raise ConfigError(message) from None


@contextmanager
def serve(
    cassettes: str | os.PathLike[str] | None = None,
    *,
    mode: str | None = None,
    timing: str | Timing | None = None,
    faults: str | list[str] | tuple[str | Fault, ...] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    config: str | os.PathLike[str] | None = None,
    **settings: Any,
) -> Iterator[ServerThread]:
    """Run a real tapedeck server (uvicorn, on a background thread) for the ``with`` block.

    ``cassettes`` is the cassette directory (default ``./cassettes``), ``mode`` one of
    ``replay`` (default), ``record``, ``auto``, ``passthrough``, ``timing`` a timing spec
    (``recorded`` by default, ``instant``, ``speed=F``, ``fixed=MS``), ``faults`` server-wide
    fault specs (docs/faults.md). ``port=0`` (the default here) picks a free port: read the
    address from ``server.base_url``. Any other keyword is a setting of the same name
    (``sequence_end="error"``, ``match_headers="anthropic-beta,x-tenant"``, ``upstream=...``);
    ``config`` reads a tapedeck.yaml file, and the keywords win over it (``host`` and ``port``
    always do).

    Raises :class:`~tapedeck.settings.ConfigError` for an invalid setting,
    :class:`~tapedeck.library.LibraryError` for a missing directory or a broken cassette and
    :class:`~tapedeck.runner.BindError` if the address cannot be bound, all before the block
    runs. The server stops when the block ends.

    >>> import anthropic, tapedeck
    >>> with tapedeck.serve(cassettes="cassettes", timing="instant") as server:
    ...     with anthropic.Anthropic(base_url=server.base_url, api_key="test") as client:
    ...         with client.messages.stream(
    ...             model="claude-sonnet-4-5", max_tokens=256,
    ...             messages=[{"role": "user", "content": "Hello"}],
    ...         ) as stream:
    ...             print(stream.get_final_text())
    Hello!
    """
    options: dict[str, Any] = {
        "cassettes": cassettes,
        "mode": mode,
        "timing": timing,
        "faults": faults,
        "host": host,
        "port": port,
        **settings,
    }
    with ServerThread(settings_from(options, config=config)) as server:
        yield server
