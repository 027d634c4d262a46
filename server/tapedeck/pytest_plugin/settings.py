"""The pytest plugin's server settings, and each test's own cassette name.

Every server setting can be given to the plugin; the first of these that gives it wins:

1. the command line: ``--tapedeck-mode``, ``--tapedeck-timing``, ``--tapedeck-cassettes``,
   ``--tapedeck-preset`` (repeatable);
2. a ``tapedeck_config`` fixture (session-scoped; a ``conftest.py`` overrides it to return
   a dict of settings, functions included — like pytest-recording's ``vcr_config``);
3. ``TAPEDECK_*`` environment variables (but ``TAPEDECK_HOST`` / ``TAPEDECK_PORT``);
4. pytest ini options ``tapedeck_<setting>`` (``pytest.ini``, ``[tool.pytest.ini_options]``,
   ``tox.ini``, ``setup.cfg``);
5. the project's ``tapedeck.yaml`` or ``[tool.tapedeck]``, found from the rootdir up (but
   ``host`` and ``port``: those are usually ``tapedeck serve``'s);
6. the plugin's own defaults: mode ``none``, timing ``instant``, a free port, and the
   project's cassette directory (``tests/cassettes`` or ``cassettes``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ..config import OPTIONS, Layer, Settings, from_names, resolve
from ..config.discovery import default_cassettes, find_project
from ..config.settings import from_env
from ..config.suggest import did_you_mean
from ..errors import ConfigError

#: Settings the plugin's server never takes from the environment or the project file: they
#: are usually the development server's, and a test session needs a free port.
_SERVE_ONLY = frozenset({"host", "port"})
_REPEATED = frozenset(o.key for o in OPTIONS if o.repeat)


def add_ini_options(parser: pytest.Parser) -> None:
    """``tapedeck_<setting>`` ini options for every server setting."""
    for option in OPTIONS:
        if option.key in _REPEATED:
            parser.addini(f"tapedeck_{option.key}", f"tapedeck: {option.help}", type="linelist")
        else:
            parser.addini(f"tapedeck_{option.key}", f"tapedeck: {option.help}", type="string")


def _ini(config: pytest.Config) -> Layer:
    found: dict[str, tuple[Any, str]] = {}
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    for option in OPTIONS:
        value = config.getini(f"tapedeck_{option.key}")
        if not value:
            continue
        if option.key == "cassettes":
            value = str(base / str(value))
        found[option.key] = (value, f"ini tapedeck_{option.key}")
    return Layer(found)


def _command_line(config: pytest.Config) -> Layer:
    found: dict[str, tuple[Any, str]] = {}
    for key in ("mode", "timing", "cassettes"):
        value = config.getoption(f"tapedeck_{key}")
        if value:
            if key == "cassettes":
                value = str(Path(value).absolute())  # relative to the working directory
            found[key] = (value, f"--tapedeck-{key}")
    presets = config.getoption("tapedeck_preset", default=None)
    if presets:
        found["presets"] = (presets, "--tapedeck-preset")
    return Layer(found)


def _without(layer: Layer, keys: frozenset[str]) -> Layer:
    return Layer({k: v for k, v in layer.values.items() if k not in keys})


def plugin_layers(
    config: pytest.Config, env: Mapping[str, str] | None = None
) -> tuple[list[Layer], list[Layer]]:
    """The layers above and below the ``tapedeck_config`` fixture's."""
    env = os.environ if env is None else env
    project = find_project(config.rootpath)
    defaults = from_names(
        {
            "mode": ("none", "the plugin's default"),
            "timing": ("instant", "the plugin's default"),
            "port": (0, "the plugin's default"),
            "cassettes": (default_cassettes(project.root), "the plugin's default"),
        }
    )
    below = [
        _without(from_env(env), _SERVE_ONLY),
        _ini(config),
        _without(project.layer, _SERVE_ONLY),
        defaults,
    ]
    return [_command_line(config)], below


def plugin_settings(
    config: pytest.Config,
    fixture: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """The settings of the plugin's server; raise :class:`~tapedeck.errors.ConfigError`
    naming where a bad value came from."""
    env = os.environ if env is None else env
    above, below = plugin_layers(config, env)
    given = from_names({k: (v, f"tapedeck_config[{k!r}]") for k, v in (fixture or {}).items()})
    unknown = sorted(set(fixture or {}) - {o.key for o in OPTIONS})
    if unknown:
        known = ", ".join(o.key for o in OPTIONS)
        raise ConfigError(
            f"tapedeck_config: unknown setting(s) {unknown}{did_you_mean(unknown)}"
            f" (known settings: {known})"
        )
    settings = resolve(*above, given, *below)
    key_in_env = bool(env.get("ANTHROPIC_API_KEY"))
    if settings.mode.proxies and key_in_env and not settings.upstream_api_key_env:
        # Record with the real key from the environment; clients keep their dummy key.
        key = from_names({"upstream_api_key_env": ("ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY")})
        settings = resolve(*above, given, key, *below)
    return settings


_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|\s]+')
_NOT_ASCII = re.compile(r"[^\x21-\x7e]")


def test_cassette(nodeid: str, rootpath: Path, cassettes: Path) -> str:
    """The cassette name of a test: ``<module path>/<test name>``, the module path taken
    relative to the folder that holds the cassette directory (e.g. ``tests/``), e.g.
    ``tests/test_chat.py::TestChat::test_hello[x]`` -> ``test_chat/TestChat.test_hello[x]``."""
    file, _, rest = nodeid.partition("::")
    module = (rootpath / file).with_suffix("")
    try:
        relative = module.relative_to(cassettes.parent)
    except ValueError:
        relative = Path(file).with_suffix("")
    test = _UNSAFE_NAME.sub("-", rest.replace("::", ".")) or "module"
    name = f"{relative.as_posix()}/{test}"
    if _NOT_ASCII.search(name) or len(name) > 200:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{_NOT_ASCII.sub('_', name)[:180]}-{digest}"
    return name
