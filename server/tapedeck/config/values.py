"""Parsers for setting values: text (a flag, an environment variable), a YAML value or an
already-typed Python value in, a typed value out, or ``ValueError`` saying what was expected.
"""

from __future__ import annotations

import enum
import importlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..cassette.matching import MatchRules
from ..cassette.normalize import Normalize
from ..record.redact import url_shown
from ..shaping.faults import Fault, parse_faults
from ..shaping.timing import Timing


def choice(enum_type: type[enum.StrEnum]) -> Callable[[Any], Any]:
    """A parser for one of an enum's values (case-insensitive)."""

    def parse(value: Any) -> Any:
        try:
            return enum_type(str(value).strip().lower())
        except ValueError:
            choices = ", ".join(repr(m.value) for m in enum_type)
            raise ValueError(f"expected one of {choices}, got {value!r}") from None

    return parse


def mode(enum_type: type[enum.StrEnum]) -> Callable[[Any], Any]:
    """A parser for the record mode, which also takes the earlier names."""

    def parse(value: Any) -> Any:
        try:
            return enum_type(str(value).strip().lower())
        except ValueError:
            choices = ", ".join(repr(m.value) for m in enum_type)
            raise ValueError(
                f"expected one of {choices} (or the earlier names 'replay', 'auto', "
                f"'record'), got {value!r}"
            ) from None

    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def patterns(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected regular expressions, got {value!r}")
    for item in items:
        try:
            compiled = re.compile(item)
        except re.error as exc:
            raise ValueError(f"{item!r} is not a regular expression: {exc}") from None
        if compiled.match(""):
            raise ValueError(f"{item!r} matches empty text; it would redact everywhere")
    return tuple(items)


def hook(value: Any) -> Callable[[Any], Any]:
    """A callable, or the ``module:name`` (or ``module.name``) of one, imported now."""
    if callable(value):
        return value  # type: ignore[no-any-return]
    text = str(value).strip()
    module, sep, name = text.partition(":") if ":" in text else text.rpartition(".")
    if not module or not name or (not sep and "." not in text):
        raise ValueError(f"expected a function as module:name, got {value!r}")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {text!r}: {exc}") from None
    if not callable(found):
        raise ValueError(f"{text!r} is not callable")
    return found  # type: ignore[no-any-return]


def port(value: Any) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) > 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {value!r}")
    return int(text)


def host(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a host name or address, got {value!r}")
    return value.strip()


def timing(value: Any) -> Timing:
    return value if isinstance(value, Timing) else Timing.parse(str(value))


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


def size(value: Any) -> int:
    m = _SIZE.match(str(value)) if not isinstance(value, bool) else None
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"expected a size such as 32MiB, 512KiB or 1048576, got {value!r}")
    return int(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]


def count(value: Any) -> int:
    text = str(value).strip() if not isinstance(value, bool) else ""
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return int(text)


def names(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a list of names (or one comma-separated string), got {value!r}")
    return tuple(i.strip() for i in items if i.strip())


def lower_names(value: Any) -> tuple[str, ...]:
    return tuple(n.lower() for n in names(value))


def match_headers(value: Any) -> tuple[str, ...]:
    found = names(value)
    MatchRules(headers=found)  # raises ValueError for headers that can never be matched
    return found


def ignore_body_fields(value: Any) -> tuple[str, ...]:
    paths = names(value)
    MatchRules(ignore_body=paths)  # raises ValueError for malformed paths
    return paths


def faults(value: Any) -> tuple[Fault, ...]:
    if isinstance(value, Fault):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, Fault) for v in value):
        return tuple(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str | Fault) for v in value):
        value = ";".join(v.text if isinstance(v, Fault) else v for v in value)
    if not isinstance(value, str):
        raise ValueError(f"expected fault specs such as 'ping:every=5', got {value!r}")
    return parse_faults(value)


def origins(value: Any) -> tuple[str, ...]:
    found = names(value)
    for origin in found:
        scheme, sep, rest = origin.partition("://")
        if origin != "null" and (not sep or scheme not in ("http", "https") or "/" in rest):
            raise ValueError(
                f"expected web origins such as http://localhost:3000 (scheme, host and port, "
                f"no path), got {origin!r}"
            )
    return tuple(o.rstrip("/").lower() for o in found)


def upload_paths(value: Any) -> tuple[str, ...]:
    found = names(value)
    for path in found:
        parts = path.strip("/").split("/")
        if not path.startswith("/v1/") or "" in parts or any("*" in p and p != "*" for p in parts):
            raise ValueError(
                f"expected API paths such as /v1/widgets or /v1/widgets/*/versions ('*' is "
                f"one whole path segment), got {path!r}"
            )
    return found


def secret(value: Any) -> str:
    # The value itself never appears in a message.
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError("expected a token of printable characters without spaces")
    return value.strip()


def url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ValueError(f"expected an http:// or https:// base URL, got {value!r}")
    return text


def state(value: Any) -> str:
    """``memory`` (in the process) or a ``redis://`` / ``rediss://`` / ``unix://`` URL."""
    text = str(value).strip()
    if text.lower() == "memory":
        return "memory"
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("redis", "rediss", "unix") or not rest:
        raise ValueError(
            "expected memory or a Redis URL such as redis://127.0.0.1:6379/0, got "
            f"{url_shown(text)!r}"
        )
    return text


def env_name(value: Any) -> str:
    text = str(value).strip()
    if not text.replace("_", "").isalnum():
        raise ValueError(f"expected the name of an environment variable, got {value!r}")
    return text


def seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise ValueError(f"expected a number of seconds > 0, got {value!r}")
    return number


def cache_directory(value: Any) -> Path | str:
    """``"off"`` (no cache), ``"auto"`` (the user's cache directory) or a directory."""
    if isinstance(value, str) and value.strip().lower() in ("off", "auto"):
        return value.strip().lower()
    return directory(value)


def positive(value: Any) -> int:
    """A whole number >= 1."""
    text = str(value).strip().replace("_", "")
    if isinstance(value, bool) or not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return int(text)


def directory(value: Any) -> Path:
    if isinstance(value, os.PathLike):
        return Path(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a directory path, got {value!r}")
    return Path(value)


def normalizers(value: Any) -> tuple[Normalize, ...]:
    """Normalize rules: a list of ``{path, pattern, replace}`` (or its JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(
                'expected a JSON list such as [{"path": "a.b", "pattern": "\\d+", '
                f'"replace": "<n>"}}], got {value!r}'
            ) from None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of {{path, pattern, replace}} rules, got {value!r}")
    rules = []
    for i, item in enumerate(value):
        if isinstance(item, Normalize):
            rules.append(item)
            continue
        try:
            rules.append(Normalize.parse(item))
        except ValueError as exc:
            raise ValueError(f"rule {i}: {exc}") from None
    return tuple(rules)
