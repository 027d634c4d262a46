"""Server settings: every option declared once, resolved as flag > env > config file > default.

Each option has a config-file key, a ``TAPEDECK_*`` environment variable, a ``--flag``, a
default and a parser that turns text (or a YAML value) into a typed value, raising
``ValueError`` with what was expected. :func:`resolve` applies the precedence and re-raises
problems as :class:`ConfigError` naming where the bad value came from.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults import Fault, parse_faults
from .matching import MatchRules
from .sequences import SequenceEnd
from .timing import Timing
from .yaml_source import LineDict, YAMLSourceError, load_yaml


class Mode(enum.StrEnum):
    """What the server does with a request."""

    #: Answer from cassettes only; never call the network.
    REPLAY = "replay"
    #: Send every request upstream and (re)write its cassette.
    RECORD = "record"
    #: Replay what matches; proxy and record what does not.
    AUTO = "auto"
    #: Proxy every request upstream without writing anything.
    PASSTHROUGH = "passthrough"

    @property
    def proxies(self) -> bool:
        return self is not Mode.REPLAY


class ConfigError(Exception):
    """A setting that cannot be used; the message names its source and what was expected."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to know, already parsed."""

    mode: Mode = Mode.REPLAY
    cassettes: Path = Path("cassettes")
    host: str = "127.0.0.1"
    port: int = 8765
    timing: Timing = field(default_factory=Timing)
    max_body_size: int = 32 * 1024 * 1024
    sequence_end: SequenceEnd = SequenceEnd.REPEAT
    match_headers: tuple[str, ...] = ("anthropic-beta",)
    ignore_body_fields: tuple[str, ...] = ("metadata.user_id",)
    faults: tuple[Fault, ...] = ()
    upstream: str = "https://api.anthropic.com"
    upstream_api_key_env: str | None = None
    upstream_timeout: float = 600.0
    redact_headers: tuple[str, ...] = ()

    def match_rules(self) -> MatchRules:
        return MatchRules(headers=self.match_headers, ignore_body=self.ignore_body_fields)


def _choice(enum_type: type[enum.StrEnum]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        try:
            return enum_type(str(value).strip().lower())
        except ValueError:
            choices = ", ".join(repr(m.value) for m in enum_type)
            raise ValueError(f"expected one of {choices}, got {value!r}") from None

    return parse


def _port(value: Any) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) > 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {value!r}")
    return int(text)


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a host name or address, got {value!r}")
    return value.strip()


def _timing(value: Any) -> Timing:
    return Timing.parse(str(value))


_SIZE = re.compile(r"^\s*(\d+)\s*(b|kib|kb|mib|mb|gib|gb)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kib": 1024,
    "kb": 1000,
    "mib": 1024**2,
    "mb": 1000**2,
    "gib": 1024**3,
    "gb": 1000**3,
}


def _size(value: Any) -> int:
    m = _SIZE.match(str(value)) if not isinstance(value, bool) else None
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"expected a size such as 32MiB, 512KiB or 1048576, got {value!r}")
    return int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]


def _names(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a list of names (or one comma-separated string), got {value!r}")
    return tuple(i.strip() for i in items if i.strip())


def _match_headers(value: Any) -> tuple[str, ...]:
    names = _names(value)
    MatchRules(headers=names)  # raises ValueError for headers that can never be matched
    return names


def _ignore_body_fields(value: Any) -> tuple[str, ...]:
    paths = _names(value)
    MatchRules(ignore_body=paths)  # raises ValueError for malformed paths
    return paths


def _faults(value: Any) -> tuple[Fault, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        value = ";".join(value)
    if not isinstance(value, str):
        raise ValueError(f"expected fault specs such as 'ping:every=5', got {value!r}")
    return parse_faults(value)


def _url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    scheme, _, host = text.partition("://")
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"expected an http:// or https:// base URL, got {value!r}")
    return text


def _env_name(value: Any) -> str:
    text = str(value).strip()
    if not text.replace("_", "").isalnum():
        raise ValueError(f"expected the name of an environment variable, got {value!r}")
    return text


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise ValueError(f"expected a number of seconds > 0, got {value!r}")
    return number


def _lower_names(value: Any) -> tuple[str, ...]:
    return tuple(n.lower() for n in _names(value))


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a directory path, got {value!r}")
    return Path(value)


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its config key (also the ``Settings`` field), parser, flag help and metavar."""

    key: str
    parse: Callable[[Any], Any]
    help: str
    metavar: str
    #: The flag may be given several times (its values arrive as a list).
    repeat: bool = False
    flag_name: str = ""

    @property
    def env(self) -> str:
        return "TAPEDECK_" + self.key.upper()

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.key.replace("_", "-"))


OPTIONS: tuple[Option, ...] = (
    Option(
        "mode",
        _choice(Mode),
        "replay (default: cassettes only, never the network), record (proxy upstream and "
        "write cassettes), auto (replay hits, record misses) or passthrough (proxy, write "
        "nothing)",
        "MODE",
    ),
    Option("cassettes", _path, "the cassette directory (default: ./cassettes)", "DIR"),
    Option("host", _host, "address to bind (default: 127.0.0.1, this machine only)", "HOST"),
    Option("port", _port, "port to listen on (default: 8765; 0 picks a free one)", "PORT"),
    Option(
        "timing",
        _timing,
        "how replayed responses are paced: recorded (default), speed=F, fixed=MS or instant",
        "SPEC",
    ),
    Option(
        "max_body_size",
        _size,
        "largest request body accepted; larger ones get 413 request_too_large (default: 32MiB)",
        "SIZE",
    ),
    Option(
        "sequence_end",
        _choice(SequenceEnd),
        "after the last interaction of a sequence: repeat the last (default) or answer an error",
        "repeat|error",
    ),
    Option(
        "match_headers",
        _match_headers,
        "request headers that take part in matching (default: anthropic-beta)",
        "NAMES",
    ),
    Option(
        "ignore_body_fields",
        _ignore_body_fields,
        "request body fields left out of matching, as dotted paths (default: metadata.user_id)",
        "PATHS",
    ),
    Option(
        "faults",
        _faults,
        "inject faults into every response, e.g. 'ping:every=5' or "
        "'status:code=529,times=2' (repeatable; see docs/faults.md)",
        "SPEC",
        repeat=True,
        flag_name="fault",
    ),
    Option(
        "upstream",
        _url,
        "the API to proxy to in record, auto and passthrough modes "
        "(default: https://api.anthropic.com)",
        "URL",
    ),
    Option(
        "upstream_api_key_env",
        _env_name,
        "send upstream the API key from this environment variable instead of the "
        "client's own auth headers (so clients can use a dummy key)",
        "NAME",
    ),
    Option(
        "upstream_timeout",
        _seconds,
        "seconds to wait for upstream data before giving up (default: 600)",
        "SECONDS",
    ),
    Option(
        "redact_headers",
        _lower_names,
        "more headers never written to cassettes, besides x-api-key, authorization, "
        "cookie, set-cookie and anthropic-organization-id",
        "NAMES",
    ),
)
_BY_KEY = {o.key: o for o in OPTIONS}


def read_config_file(path: Path) -> dict[str, tuple[Any, int]]:
    """Read a YAML config file into ``{key: (value, line)}``; raise :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        document = load_yaml(text)
    except YAMLSourceError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from None
    if document is None:
        return {}
    if not isinstance(document, LineDict):
        raise ConfigError(f"{path}:1: expected a mapping of setting names to values")
    values: dict[str, tuple[Any, int]] = {}
    for key, value in document.items():
        line = document.line_of(key)
        if key not in _BY_KEY:
            known = ", ".join(o.key for o in OPTIONS)
            raise ConfigError(f"{path}:{line}: unknown setting {key!r} (known settings: {known})")
        if key == "cassettes" and isinstance(value, str):
            value = str(path.parent / value)  # relative to the config file, not the cwd
        values[key] = (value, line)
    return values


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_file: Path | None = None,
) -> Settings:
    """Build :class:`Settings` with precedence flag > environment > config file > default.

    ``flags`` maps option keys to values given on the command line (``None`` = not given).
    """
    from_file = read_config_file(config_file) if config_file is not None else {}
    chosen: dict[str, Any] = {}
    for option in OPTIONS:
        if flags.get(option.key) is not None:
            raw, source = flags[option.key], option.flag
        elif option.env in env:
            raw, source = env[option.env], option.env
        elif option.key in from_file:
            raw, line = from_file[option.key]
            source = f"{config_file}:{line}: {option.key}"
        else:
            continue
        try:
            chosen[option.key] = option.parse(raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return Settings(**chosen)
