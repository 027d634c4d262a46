"""Helpers shared by the cassette tools: finding files and naming cassettes."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from ..cassette.files import SUFFIXES, cassette_files


def fail(message: str, status: int = 2) -> int:
    """Print ``tapedeck: error: MESSAGE`` to stderr and return ``status``."""
    print(f"tapedeck: error: {message}", file=sys.stderr)
    return status


def name_of(path: Path, root: Path | None) -> str:
    """The cassette name of ``path``: relative to ``root`` when inside it, without suffix."""
    if root is not None:
        try:
            return path.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            pass
    return path.with_suffix("").name


def expand(paths: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """Files and directories expanded to ``(file, directory it was found under)`` pairs.

    A file given directly has no directory (``None``). Raises ``FileNotFoundError`` for a path
    that does not exist.
    """
    found: list[tuple[Path, Path | None]] = []
    for path in paths:
        if path.is_dir():
            found.extend((f, path) for f in cassette_files(path))
        elif path.is_file():
            found.append((path, None))
        else:
            raise FileNotFoundError(str(path))
    return found


def has_cassette_suffix(text: str) -> bool:
    """Whether ``text`` ends with a cassette suffix (``.yaml``/``.yml``)."""
    return text.endswith(SUFFIXES)
