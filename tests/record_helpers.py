"""Helpers shared by the test_record_*.py files: a proxying tapedeck, and what it wrote."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import yaml

from conftest import MakeServer
from fake_upstream import FakeUpstream
from tapedeck.config import Mode
from tapedeck.server.runner import ServerThread


def proxy(
    make_server: MakeServer, root: Path, mode: str, upstream: FakeUpstream | str, **settings: Any
) -> AbstractContextManager[ServerThread]:
    url = upstream if isinstance(upstream, str) else upstream.base_url
    return make_server(root, mode=Mode(mode), upstream=url, **settings)


def files(root: Path) -> list[Path]:
    """Every file under ``root`` (hidden and temporary ones included)."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def names(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in files(root)]


def only_cassette(root: Path) -> dict[str, Any]:
    found = files(root)
    assert len(found) == 1, names(root)
    assert found[0].suffix == ".yaml", names(root)
    doc: dict[str, Any] = yaml.safe_load(found[0].read_text(encoding="utf-8"))
    return doc


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def raw_post(
    server: ServerThread, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=10) as h:
        return h.post(path, json=body, headers={"anthropic-version": "2023-06-01", **headers})
