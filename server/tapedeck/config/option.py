"""The type of one setting, :class:`Option`: config key, parser, default, help; the flag and
the ``TAPEDECK_*`` variable are derived from the key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its key (also the ``Settings`` field), parser, default and help."""

    key: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str
    #: How the default reads in the help ("" for none: the help says what happens).
    shown: str = ""
    #: The flag may be given several times (its values arrive as a list).
    repeat: bool = False
    flag_name: str = ""
    #: An on/off setting: ``--key`` and ``--no-key`` on the command line, no value.
    switch: bool = False

    @property
    def env(self) -> str:
        return "TAPEDECK_" + self.key.upper()

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.key.replace("_", "-"))

    @property
    def flags(self) -> str:
        """How the help lists the flag: ``--flag METAVAR``, or ``--key, --no-key``."""
        if self.switch:
            return f"{self.flag}, --no-{self.flag.removeprefix('--')}"
        return f"{self.flag} {self.metavar}"

    @property
    def full_help(self) -> str:
        """The help text, with the default, as ``--help`` shows it."""
        return f"{self.help} (default: {self.shown})" if self.shown else self.help
