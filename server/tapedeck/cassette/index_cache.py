"""The index cache file: one cassette directory's index entries, kept between starts.

It lives in a directory of the user's (the ``index_cache`` setting; by default
``$XDG_CACHE_HOME/tapedeck`` or ``~/.cache/tapedeck``, never inside the cassette
directory), named after the cassette directory. Two lines of JSON: the first holds the
format, the release that wrote it, and each file's ``[name, size, mtime_ns, sha256]`` by its
path under the directory — all a start needs to tell which files changed — and the second the
entries themselves (:mod:`.index_entry`), read only when cassettes are made from them. A
file of another format or release reads as empty; deleting the directory is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..version import __version__

log = logging.getLogger("tapedeck")

#: Bumped whenever an entry's layout, or what loading a file checks, changes: an older
#: cache is then ignored (its entries vouch for files checked by the older rules; 3: the
#: event order an SDK can assemble; 4: a stream's middle events checked on first use; 5:
#: a first line of stamps and digests alone, read without the entries).
FORMAT = 5


def default_cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/tapedeck``, else ``~/.cache/tapedeck``."""
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tapedeck"


class IndexCache:
    """The cache file of the cassette directory ``root`` in ``directory``."""

    def __init__(self, directory: Path, root: Path) -> None:
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:20]
        self.path = directory / f"index-{digest}.json"

    def stamps(self) -> dict[str, list[Any]]:
        """Each file's ``[name, size, mtime_ns, sha256]`` by key (the first line only)."""
        try:
            with open(self.path, encoding="utf-8") as file:
                head = _ours(json.loads(file.readline()))
        except (OSError, ValueError):
            return {}
        stamps = head.get("stamps")
        return stamps if isinstance(stamps, dict) else {}

    def entries(self) -> dict[str, Any]:
        """Each file's entry by key."""
        try:
            head, _, rest = self.path.read_text(encoding="utf-8").partition("\n")
            if not _ours(json.loads(head)):
                return {}
            files = json.loads(rest)
        except (OSError, ValueError):
            return {}
        return files if isinstance(files, dict) else {}

    def write(self, files: dict[str, Any]) -> None:
        """Replace the file with ``files`` (entries by key) whole, or leave it as it was
        (and say why in the log)."""
        stamps = {key: known(entry) for key, entry in files.items()}
        head = {"format": FORMAT, "tapedeck": __version__, "stamps": stamps}
        text = f"{_json(head)}\n{_json(files)}"
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            log.info("index cache not written (%s): %s", self.path, exc.strerror)
            temporary.unlink(missing_ok=True)


def known(entry: dict[str, Any]) -> list[Any]:
    """What the first line holds of a file: ``[name, size, mtime_ns, sha256]``."""
    return [entry["name"], *entry["stamp"], entry.get("sha256")]


def _json(part: dict[str, Any]) -> str:
    """One line of the file (JSON escapes every line break inside a string)."""
    return json.dumps(part, ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _ours(head: Any) -> dict[str, Any]:
    """The first line if this format and release wrote it, else nothing."""
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        return {}
    return head if head.get("tapedeck") == __version__ else {}
