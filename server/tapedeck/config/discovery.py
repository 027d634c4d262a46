"""Finding a project's tapedeck settings without being told where they are.

From the working directory up, the first folder holding a ``tapedeck.yaml`` or a
``pyproject.toml`` with a ``[tool.tapedeck]`` table is the project's (``tapedeck.yaml``
wins when a folder has both). Its ``cassettes`` setting is relative to that folder. With no
such setting, the cassette directory is ``tests/cassettes`` or ``cassettes``, whichever
exists (for a new project: ``tests/cassettes`` if it has a ``tests/`` folder).
``tapedeck serve``, ``ls``, ``show``, ``lint``, ``new`` and the pytest plugin all find
settings this way.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .options import BY_KEY
from .settings import Layer, from_env, from_file, from_names, resolve
from .suggest import unknown_setting

CONFIG_FILE = "tapedeck.yaml"


@dataclass(frozen=True, slots=True)
class Found:
    """The project's settings: where they were found (``None``: nowhere) and the folder
    the project's paths are relative to."""

    layer: Layer
    source: Path | None
    root: Path


def find_project(start: Path | None = None) -> Found:
    """The nearest ``tapedeck.yaml`` or ``[tool.tapedeck]`` from ``start`` (default: the
    working directory) up; raise :class:`ConfigError` for one that cannot be used."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        yaml_file = folder / CONFIG_FILE
        if yaml_file.is_file():
            return Found(from_file(yaml_file), yaml_file, folder)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            layer = from_pyproject(pyproject)
            if layer is not None:
                return Found(layer, pyproject, folder)
    return Found(Layer(), None, here)


def from_pyproject(path: Path) -> Layer | None:
    """The ``[tool.tapedeck]`` table of a ``pyproject.toml``, or ``None`` if it has none."""
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    table = document.get("tool", {}).get("tapedeck")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.tapedeck] must be a table of settings")
    lines = _key_lines(text)
    found: dict[str, tuple[Any, str]] = {}
    for key, value in table.items():
        where = f"{path}:{lines.get(key, 0)}: {key}" if lines.get(key) else f"{path}: {key}"
        if key not in BY_KEY:
            raise ConfigError(f"{where}: {unknown_setting(key)}")
        if key == "cassettes" and isinstance(value, str):
            value = str(path.parent / value)
        found[key] = (value, where)
    return Layer(found)


def _key_lines(text: str) -> dict[str, int]:
    """The line of each key of the ``[tool.tapedeck]`` table, for error messages."""
    lines: dict[str, int] = {}
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.replace(" ", "") == "[tool.tapedeck]"
            continue
        match = re.match(r"([A-Za-z0-9_\-]+)\s*=", stripped) if inside else None
        if match:
            lines.setdefault(match.group(1), number)
    return lines


def default_cassettes(root: Path) -> Path:
    """The cassette directory of a project that does not say: ``tests/cassettes`` or
    ``cassettes``, whichever exists; for a new project, ``tests/cassettes`` when it has a
    ``tests/`` folder, else ``cassettes``."""
    tests, top = root / "tests" / "cassettes", root / "cassettes"
    for candidate in (tests, top):
        if candidate.is_dir():
            return candidate
    return tests if tests.parent.is_dir() else top


def settings_layers(env: Mapping[str, str], config: Path | None = None) -> list[Layer]:
    """The layers after the command line's: the environment, then the config file (the one
    given, else the project's), then the project's default cassette directory."""
    if config is not None:
        found = Found(from_file(config), config, config.parent)
    else:
        found = find_project()
    default = from_names({"cassettes": (_shown(default_cassettes(found.root)), "the default")})
    return [from_env(env), found.layer, default]


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it (as messages show)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def cassette_dir(given: Path | None, env: Mapping[str, str]) -> Path:
    """The cassette directory for the cassette tools: ``given``, else as ``serve`` finds it."""
    if given is not None:
        return given
    return resolve(*settings_layers(env)).cassettes
