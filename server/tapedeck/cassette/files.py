"""Cassette files on disk: which files under a directory are cassettes, and their names."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CassetteError, LibraryError

SUFFIXES = (".yaml", ".yml")


def listing(root: Path) -> tuple[list[tuple[Path, str, str]], list[CassetteError]]:
    """Every cassette file under ``root`` as ``(path, name, display)``, and the problems a
    listing finds: ``root`` not a directory, a link leading outside it, two files with
    one name. Reads no file."""
    if not root.is_dir():
        raise LibraryError(
            [
                CassetteError(
                    str(root),
                    0,
                    "not a directory (expected the "
                    "cassette directory, e.g. --cassettes ./cassettes)",
                )
            ]
        )
    real_root = os.path.realpath(root)
    prefix = len(str(root)) + 1
    errors: list[CassetteError] = []
    seen: dict[str, str] = {}
    found: list[tuple[Path, str, str]] = []
    for path in cassette_files(root):
        display = str(path)
        # The walk does not follow links to folders: only a file that is a link itself
        # can lead outside (pathlib's resolve() for each file costs a large library
        # most of a warm start).
        if os.path.islink(display) and not _inside(os.path.realpath(display), real_root):
            errors.append(
                CassetteError(
                    display,
                    0,
                    "is a link to a file outside the cassette directory; copy the file in instead",
                )
            )
            continue
        relative = display[prefix:].replace(os.sep, "/")
        name = relative[: relative.rindex(".")]
        if name in seen:
            errors.append(
                CassetteError(
                    display,
                    0,
                    f"cassette name {name!r} is also used by {seen[name]}; rename one of them",
                )
            )
            continue
        seen[name] = display
        found.append((path, name, display))
    return found, errors


def cassette_files(root: Path) -> list[Path]:
    """Every cassette file under ``root``, sorted; dot-files and dot-folders are skipped."""
    files: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files.extend(
            os.path.join(folder, n) for n in names if not n.startswith(".") and n.endswith(SUFFIXES)
        )
    # Sorted as paths (by their parts), not as text: "a/b" before "a-b".
    return [Path(f) for f in sorted(files, key=lambda f: f.split(os.sep))]


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)
