"""The web view's journal shows a miss in a long text as its window around the first
difference, marked, and says when another client release recorded the closest interaction
(Debian's Chromium, driven by Playwright, on a real server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from browser import watched_page
from conftest import MakeServer, sdk
from test_miss_window import prompt

TIMEOUT_MS = 10_000


@pytest.fixture
def page() -> Iterator[tuple[Any, list[str]]]:
    with watched_page(TIMEOUT_MS) as opened:
        yield opened


def body(system: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": [{"type": "text", "text": system}],
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_the_journal_shows_the_window_and_the_client(
    make_server: MakeServer, tmp_path: Path, page: tuple[Any, list[str]]
) -> None:
    interaction = {
        "request": {
            "method": "POST",
            "path": "/v1/messages",
            "client": {"name": "claude-cli", "release": "2.1.300"},
            "body": body(prompt("/srv/beta")),
        },
        "response": {"status": 200, "body": {"type": "message"}},
    }
    (tmp_path / "agent.yaml").write_text(json.dumps({"version": 1, "interactions": [interaction]}))
    browser, errors = page
    with make_server(tmp_path) as server:
        browser.goto(f"{server.base_url}/_tapedeck/ui/")
        browser.wait_for_selector("body[data-ready=true]")
        cli = {"User-Agent": "claude-cli/2.1.337 (external, cli)"}
        with sdk(server, default_headers=cli) as client, pytest.raises(anthropic.NotFoundError):
            client.messages.create(**body(prompt("/srv/alpha")))
        browser.wait_for_selector("#entries li.entry.source-miss")
        entry = browser.locator("#entries li.entry.source-miss").first
        row = entry.locator("table.differences tbody tr").first
        cells = row.locator("td")
        at = prompt("/srv/alpha").index("alpha")
        assert cells.nth(0).inner_text() == f"system[0].text at char {at:,}"
        assert cells.nth(1).inner_text() == (
            "…imary working directory: /srv/alpha\\nIs a git repository: true\\nIMPORTAN"
        )
        assert cells.nth(1).locator("mark").inner_text() == (
            "alpha\\nIs a git repository: true\\nIMPORTAN"
        )
        assert cells.nth(2).locator("mark").inner_text() == (
            "beta\\nIs a git repository: true\\nIMPORTANT"
        )
        assert entry.locator(".client-note").inner_text() == (
            "recorded with claude-cli 2.1.300; this request is from claude-cli 2.1.337"
        )
        browser.wait_for_timeout(200)  # anything the page would still log
        assert errors == []
