"""Debian's Chromium under Playwright for Python, for the web view's tests and screenshot.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (``apt-get
install chromium``; .ci/run installs it), with a fresh profile and without the background
networking that a sandboxed machine refuses.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing() -> str | None:
    """Why the browser cannot run here, or ``None`` if it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (make builds .venv with it, from uv.lock)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@contextmanager
def chromium(width: int = 1440, height: int = 1000) -> Iterator[Any]:
    """A Playwright browser context on Debian's Chromium, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="tapedeck-chromium-") as profile,
        sync_playwright() as p,
    ):
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def watched_page(timeout_ms: int = 10_000) -> Iterator[tuple[Any, list[str]]]:
    """A page in Chromium and the errors it reports (console errors, page errors, failed
    requests); skipped where Chromium is missing, except in CI, where that fails."""
    import pytest

    problem = missing()
    if problem is not None:
        if in_ci():
            pytest.fail(f"the browser test must run in CI: {problem}")
        pytest.skip(problem)
    with chromium() as context:
        opened = context.new_page()
        opened.set_default_timeout(timeout_ms)
        errors: list[str] = []
        opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        opened.on("pageerror", lambda exc: errors.append(str(exc)))
        opened.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
        yield opened, errors
