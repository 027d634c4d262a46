"""The web view in a real browser (Debian's Chromium, driven by Playwright) on a real server.

It loads the page, lists the shipped cassettes, draws one mark per event for each of them,
and shows requests made while it is open in its live journal — with no console error.
Outside CI a machine without Chromium skips it; in CI (``CI=true``) it must run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from browser import watched_page
from conftest import HELLO, MakeServer, sdk
from tapedeck.server.runner import ServerThread

TIMEOUT_MS = 10_000


@pytest.fixture
def page() -> Iterator[tuple[Any, list[str]]]:
    with watched_page(TIMEOUT_MS) as opened:
        yield opened


def names_listed(page: Any) -> list[str]:
    rows = page.locator("#cassettes tbody tr[data-name]")
    return [rows.nth(i).get_attribute("data-name") for i in range(rows.count())]


def test_the_library_the_charts_and_the_live_journal(
    make_server: MakeServer, page: tuple[Any, list[str]]
) -> None:
    browser, errors = page
    with make_server() as server:
        library = server.library
        browser.goto(f"{server.base_url}/_tapedeck/ui/")
        browser.wait_for_selector("body[data-ready=true]")
        assert f"{len(library)} cassettes" in browser.inner_text("#server")
        assert names_listed(browser) == sorted(library.cassettes)
        assert any(len(c.interactions) > 1 for c in library.cassettes.values())

        for name, cassette in sorted(library.cassettes.items()):
            browser.click(f"#cassettes a[href='#{name}']")
            browser.wait_for_function(
                "name => document.querySelector('#cassette h2')?.textContent === name", arg=name
            )
            shown = browser.locator("#cassette article.interaction")
            assert shown.count() == len(cassette.interactions), name
            for i, interaction in enumerate(cassette.interactions):
                events = interaction.response.events or ()
                article = shown.nth(i)
                chart = article.locator("svg.timeline")
                assert chart.count() == 1
                assert chart.locator(".mark").count() == len(events), (name, i)
                end = chart.locator(".end text").first.text_content()
                assert end == ("error" if name.startswith("errors/") else "complete"), name
                if events:
                    rows = article.locator("table.events tbody tr")
                    assert rows.count() == len(events)

        browser.click("#cassettes a[href='#streaming/hello']")
        browser.wait_for_selector("#cassette .message .text")
        assert browser.inner_text("#cassette .message .text") == "Hello!"

        browser.fill("#filter", "web")
        assert names_listed(browser) == ["streaming/web-search"]
        browser.fill("#filter", "")

        test_id = "tests/test_ui_browser.py::a request made while the page is open"
        headers = {"x-tapedeck-test-id": test_id}
        with sdk(server, default_headers=headers) as client:
            with client.messages.stream(
                **HELLO, extra_headers={"x-tapedeck-fault": "ping:every=4"}
            ) as stream:
                assert stream.get_final_text() == "Hello!"
            with pytest.raises(anthropic.NotFoundError):
                client.messages.create(**{**HELLO, "max_tokens": 7})
            with pytest.raises(anthropic.BadRequestError):  # 2026-10-21 has no temperature
                client.messages.create(**HELLO, extra_body={"temperature": 0.5})
        entries = browser.locator(f"#entries li.entry[data-test-id='{test_id}']")
        browser.wait_for_function(
            "n => document.querySelectorAll('#entries li.entry').length >= n", arg=3
        )
        assert entries.count() == 3
        refused, newest, oldest = entries.nth(0), entries.nth(1), entries.nth(2)  # newest first
        assert re.search(r"400\s+ERROR", refused.inner_text())
        assert refused.locator(".broken").inner_text() == "breaks sampling_removed"
        assert "ping:every=4 @ 4, 9" in oldest.inner_text()
        assert "streaming/hello#0" in oldest.inner_text()
        assert re.search(r"404\s+MISS", newest.inner_text())
        differences = newest.locator("table.differences tbody tr")
        assert differences.first.inner_text().split("\t") == ["max_tokens", "7", "256"]
        browser.wait_for_timeout(200)  # anything the page would still log
        assert errors == []


def test_the_page_is_served_with_its_files_only(server: ServerThread) -> None:
    page = httpx.get(f"{server.base_url}/_tapedeck/ui/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "http" not in policy  # nothing from anywhere else
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if asset.startswith(("data:", "../", "#")):
            continue
        assert "://" not in asset, asset  # no CDN
        got = httpx.get(f"{server.base_url}/_tapedeck/ui/{asset}", timeout=10)
        assert got.status_code == 200, asset
        assert not re.search(r"""(?:from|import)\s*\(?\s*['"]https?:""", got.text), asset
    redirect = httpx.get(f"{server.base_url}/_tapedeck/ui", timeout=10)
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "/_tapedeck/ui/"
    for bad in ("../admin.py", "nothing.js", "%2e%2e%2fapp.py"):
        refused = httpx.get(f"{server.base_url}/_tapedeck/ui/{bad}", timeout=10)
        assert refused.status_code == 404, bad
