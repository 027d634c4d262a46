"""Server settings: declared once (:mod:`.options`), parsed (:mod:`.values`) and resolved
from flags, the environment, a config file or keywords (:mod:`.settings`)."""

from __future__ import annotations

from ..errors import ConfigError
from .options import DEFAULTS, OPTIONS, Mode, Option
from .settings import (
    Layer,
    Settings,
    from_env,
    from_file,
    from_flags,
    from_keywords,
    from_names,
    resolve,
)

__all__ = [
    "DEFAULTS",
    "OPTIONS",
    "ConfigError",
    "Layer",
    "Mode",
    "Option",
    "Settings",
    "from_env",
    "from_file",
    "from_flags",
    "from_keywords",
    "from_names",
    "resolve",
]
