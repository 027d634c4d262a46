"""Write cassettes as readable, diffable YAML, atomically.

Event data is written as one flow mapping per event, so a recorded stream reads (and
diffs) one event per line; everything else is block style. Files are written to a
temporary file in the same directory and renamed into place, so a crash mid-write leaves
the old file or none, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .model import FORMAT_VERSION, Interaction, RecordedRequest, RecordedResponse, StreamEnd
from .normalize import Normalize

try:
    _BaseDumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseDumper = yaml.SafeDumper


class _Flow(dict[str, Any]):
    """A mapping written in flow style: ``{type: ping}``."""


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    def ignore_aliases(self, data: Any) -> bool:
        """A value used twice is written twice: ``&id001`` anchors are hard to read."""
        return True


def _flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Plain or single-quoted text would spread a line break over several lines; double
    # quotes keep it as "\n", so every event stays on one line.
    style = '"' if any(b in data for b in _LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(_Flow, _flow)
_Dumper.add_representer(str, _text)
# Loaded cassettes hold dict subclasses (with line numbers); write them as plain mappings.
_Dumper.add_multi_representer(dict, _BaseDumper.represent_dict)


def _headers(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    for name, value in pairs:
        if name in headers:
            previous = headers[name]
            headers[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            headers[name] = value
    return headers


def request_mapping(request: RecordedRequest) -> dict[str, Any]:
    """``request`` as a cassette writes it: ``method``, ``path`` and, when present,
    ``client``, ``query``, ``headers``, ``body`` and ``match``."""
    out: dict[str, Any] = {"method": request.method, "path": request.path}
    client = request.client
    if client is not None:
        out["client"] = _Flow(
            {"name": client.name}
            if client.release is None
            else {"name": client.name, "release": client.release}
        )
    if request.query:
        out["query"] = _headers(request.query)
    if request.headers:
        out["headers"] = _headers(request.headers)
    if request.body is not None:
        out["body"] = request.body
    if request.match is not None:
        out["match"] = list(request.match)
    return out


def _ms(value: float) -> float | int:
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def _response(response: RecordedResponse) -> dict[str, Any]:
    out: dict[str, Any] = {"status": response.status}
    if response.headers:
        out["headers"] = _headers(response.headers)
    out["time_to_headers_ms"] = _ms(response.time_to_headers_ms)
    if response.events is not None:
        out["events"] = [
            {
                "event": e.event,
                "at_ms": _ms(e.at_ms),
                "data": _Flow(e.data) if isinstance(e.data, dict) else e.data,
            }
            for e in response.events
        ]
        if response.end is not StreamEnd.COMPLETE:
            out["end"] = str(response.end)
        if response.end_at_ms is not None:
            out["end_at_ms"] = _ms(response.end_at_ms)
    elif response.text is not None:
        out["text"] = response.text
    elif response.binary is not None:
        out["binary"] = _Flow({"sha256": response.binary.sha256, "size": response.binary.size})
    elif response.body is not None:
        out["body"] = response.body
    return out


def _interaction(interaction: Interaction) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if interaction.recorded_at is not None:
        out["recorded_at"] = interaction.recorded_at
    out["request"] = request_mapping(interaction.request)
    out["response"] = _response(interaction.response)
    return out


def dump_cassette(
    interactions: Sequence[Interaction],
    description: str = "",
    comment: str = "",
    normalize: Sequence[Normalize] = (),
) -> str:
    """The YAML text of a cassette holding ``interactions``."""
    document: dict[str, Any] = {"version": FORMAT_VERSION}
    if description:
        document["description"] = description
    if normalize:
        document["normalize"] = [
            {"path": ".".join(r.path), "pattern": r.pattern.pattern, "replace": r.replace}
            for r in normalize
        ]
    document["interactions"] = [_interaction(i) for i in interactions]
    text = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=2**16,
        default_flow_style=False,
    )
    header = "".join(f"# {line}\n".replace("# \n", "#\n") for line in comment.splitlines())
    return header + text


# Read once, at import (on the main thread): os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename in the same directory.

    The file keeps the permissions of the one it replaces, or gets those of any new file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    # The writer's pid in the name: a file left by a process that died mid-write is known
    # as such (sweep_temporary), while one being written by another live process is not.
    fd, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


#: A cassette's temporary file, or that of a file kept beside one (named by its sha256).
_TEMPORARY = re.compile(r"^\.(?:.+\.ya?ml|[0-9a-f]{64})\.(\d+)\.[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_temporary(root: Path) -> list[Path]:
    """Remove the temporary files that processes killed mid-write (``kill -9``, power loss)
    left under ``root``; return them. Files of processes still running are left alone."""
    removed: list[Path] = []
    for folder, _, names in os.walk(root):
        for name in names:
            found = _TEMPORARY.match(name)
            if found is None or _alive(int(found.group(1))):
                continue
            path = Path(folder) / name
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_inside(root: Path, relative: str, text: str | bytes) -> None:
    """Write ``text`` (UTF-8 text, or bytes) to ``root/relative`` as :func:`write_atomic`
    does, following no symbolic link below ``root``.

    Each folder on the way is opened relative to the one before it, refusing links, and
    made if missing; the file is created and renamed relative to its folder. A link swapped
    in anywhere below ``root`` while a stream was being recorded makes the write fail
    (``OSError``) instead of landing outside. ``relative`` must be a plain relative path.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or {"", ".", ".."} & set(parts):
        raise ValueError(f"not a plain relative path: {relative!r}")
    folder_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, folder_flags, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                inner = os.open(part, folder_flags, dir_fd=fd)
            os.close(fd)
            fd = inner
        _replace_in(fd, parts[-1], text)
    finally:
        os.close(fd)


def _replace_in(folder: int, name: str, text: str | bytes) -> None:
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        found = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    else:
        if stat.S_ISLNK(found.st_mode):
            raise OSError(errno.ELOOP, "the cassette file is a symbolic link", name)
        mode = found.st_mode & 0o7777
    # The writer's pid in the name lets sweep_temporary tell a dead writer's file.
    temporary = f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    handle_fd = os.open(temporary, flags, 0o600, dir_fd=folder)
    try:
        with os.fdopen(handle_fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=folder)
        raise
    os.fsync(folder)  # so that the rename itself survives a crash
