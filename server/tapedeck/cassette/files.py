"""Cassette files on disk: which files under a directory are cassettes, their names, and
reading one's text."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Container
from pathlib import Path, PurePosixPath

from ..errors import CassetteError, LibraryError, UnsafeNameError

SUFFIXES = (".yaml", ".yml")


def listing(root: Path) -> tuple[list[tuple[str, str, str]], list[CassetteError]]:
    """Every cassette file under ``root`` as ``(path, name, display)`` (the path as text:
    a ``Path`` each costs a large library's start-up 30 ms), and the problems a listing
    finds: ``root`` not a directory, a link leading outside it, two files with one name.
    Reads no file."""
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
    found: list[tuple[str, str, str]] = []
    files: list[tuple[str, bool]] = []
    _walk(str(root), files)
    for display, link in files:
        # The walk does not follow links to folders: only a file that is a link itself
        # can lead outside (pathlib's resolve() for each file costs a large library
        # most of a warm start).
        if link and not _inside(os.path.realpath(display), real_root):
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
        found.append((display, name, display))
    return found, errors


def cassette_files(root: Path) -> list[Path]:
    """Every cassette file under ``root``, sorted; dot-files and dot-folders are skipped."""
    files: list[tuple[str, bool]] = []
    _walk(str(root), files)
    return [Path(f) for f, _ in files]


def _walk(folder: str, out: list[tuple[str, bool]]) -> None:
    """Append each cassette file under ``folder`` and whether it is a link, sorted as paths
    (by their parts, not as text: "a/b" before "a-b": each folder's entries in name order,
    a subfolder's files in its place). Links to folders are not followed, as ``os.walk``
    does not; the directory entries say what is a link without a ``stat`` per file."""
    try:
        with os.scandir(folder) as listed:
            entries = sorted(listed, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            folder_like = entry.is_dir()
        except OSError:
            folder_like = False
        if folder_like:
            if not entry.is_symlink():
                _walk(entry.path, out)
        elif name.endswith(SUFFIXES):
            out.append((entry.path, entry.is_symlink()))


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def read_stamped(file: str, display: str) -> tuple[str, tuple[int, int], str]:
    """The UTF-8 text of cassette ``file`` (``display`` in errors), the size and
    modification time (ns) it was read at, from the open file (one ``stat`` fewer than
    asking the path), and the SHA-256 of its bytes (hex)."""
    raw, stamp = _read(file, display)
    return decoded(raw, display), stamp, hashlib.sha256(raw).hexdigest()


def digest_of(file: str) -> str | None:
    """The SHA-256 of ``file``'s bytes (hex), or ``None`` if it cannot be read."""
    try:
        with open(file, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _read(file: str, display: str) -> tuple[bytes, tuple[int, int]]:
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            info = os.fstat(fd)
            raw = os.read(fd, info.st_size + 1)
            if len(raw) > info.st_size:  # it grew since: read on to its end
                chunks = [raw]
                while chunks[-1]:
                    chunks.append(os.read(fd, 1 << 16))
                raw = b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CassetteError(display, 0, f"cannot read: {exc.strerror}") from None
    return raw, (info.st_size, info.st_mtime_ns)


def decoded(raw: bytes, file: str) -> str:
    """``raw`` as UTF-8 text; a :class:`CassetteError` naming the line where it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CassetteError(
            file, line, f"not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from None


def safe_name(root: Path, raw: str, known: Container[str]) -> str:
    """A client-supplied cassette name, normalized (no suffix), checked to stay inside
    ``root`` (a name in ``known`` is one already loaded from there).

    Raise :class:`UnsafeNameError` for a name that is absolute, climbs out with ``..``
    or reaches a file outside the directory through a link, whether or not it exists.
    """
    if not raw or "\x00" in raw or "\\" in raw:
        raise UnsafeNameError("expected a relative name such as 'streaming/hello'")
    pure = PurePosixPath(raw)
    if pure.is_absolute() or (len(raw) > 1 and raw[1] == ":"):
        raise UnsafeNameError(
            "absolute paths are not allowed; use a name relative to the cassette directory"
        )
    if ".." in pure.parts or pure.name in ("", "."):
        raise UnsafeNameError("'..' is not allowed in a cassette name")
    name = pure.with_suffix("").as_posix() if pure.suffix in SUFFIXES else pure.as_posix()
    if name in known:
        return name
    # Only links are followed here (no file is opened): a name that leads outside is
    # refused even when nothing is there, so a client learns nothing about the outside.
    real_root = root.resolve()
    for suffix in ("", *SUFFIXES):
        if not (root / (name + suffix)).resolve().is_relative_to(real_root):
            raise UnsafeNameError("the name resolves outside the cassette directory")
    return name
