"""Which files under a directory are cassettes, in which order (cassette/files.py): the same
as a plain ``os.walk`` sorted by path parts, links and hidden files included."""

from __future__ import annotations

import os
from pathlib import Path

from tapedeck.cassette.files import SUFFIXES, cassette_files, listing


def _reference(root: Path) -> list[Path]:
    """The walk as it was written first: ``os.walk``, then sorted by path parts."""
    files: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [os.path.join(folder, n) for n in names if not n.startswith(".")]
    chosen = [f for f in files if f.endswith(SUFFIXES)]
    return [Path(f) for f in sorted(chosen, key=lambda f: f.split(os.sep))]


def test_the_files_and_their_order_are_those_of_a_sorted_walk(tmp_path: Path) -> None:
    root, outside = tmp_path / "r", tmp_path / "outside"
    for folder in ("a/b", ".dot", "a-b"):
        (root / folder).mkdir(parents=True)
    outside.mkdir()
    for name in (
        *("a.yaml", "a-b.yaml", "a/b.yaml", "a/b/c.yml", "a/b.yml.txt", ".h.yaml"),
        *(".dot/x.yaml", "a-b/z.yaml", "a b.yaml", "A.yaml", "a/_x.yaml", "a0.yaml"),
    ):
        (root / name).touch()
    (outside / "o.yaml").touch()
    (root / "lo.yaml").symlink_to(outside / "o.yaml")
    (root / "li.yaml").symlink_to(root / "a.yaml")
    (root / "linked").symlink_to(outside)  # a link to a folder is not followed
    (root / "broken.yaml").symlink_to(root / "nowhere.yaml")

    assert cassette_files(root) == _reference(root)
    found, errors = listing(root)
    assert [name for _, name, _ in found] == [
        *("A", "a/_x", "a/b/c", "a/b", "a b", "a-b/z", "a-b", "a", "a0", "broken", "li"),
    ]
    assert [e.file for e in errors] == [str(root / "lo.yaml")]
