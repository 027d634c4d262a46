"""Take docs/ui.png: the web view over the shipped cassettes, with a few requests in its
journal (a replay, a fault, a miss, a request that validation refused).
``make ui-screenshot``; needs /usr/bin/chromium."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import anthropic

import tapedeck
from browser import chromium

ROOT = Path(__file__).resolve().parent.parent
ASK = {"model": "claude-sonnet-4-5", "max_tokens": 256}


def main(out: Path) -> None:
    os.chdir(ROOT)  # the page shows cassette paths as the server was given them
    with tapedeck.serve(cassettes="cassettes", timing="instant") as server:
        headers = {"x-tapedeck-test-id": "tests/test_chat.py::test_weather"}
        with anthropic.Anthropic(
            base_url=server.base_url, api_key="test", max_retries=0, default_headers=headers
        ) as client:
            weather = [{"role": "user", "content": "What is the weather like in San Francisco?"}]
            recorded = server.library.cassettes["streaming/tool-use"].interactions[0]
            body = {k: v for k, v in recorded.request.body.items() if k != "stream"}
            with client.messages.stream(**body) as stream:
                stream.until_done()
            with (
                contextlib.suppress(anthropic.APIStatusError),
                client.messages.stream(
                    **ASK,
                    messages=[{"role": "user", "content": "Hello"}],
                    extra_headers={"x-tapedeck-fault": "overloaded:after=4"},
                ) as stream,
            ):
                stream.until_done()
            with contextlib.suppress(anthropic.NotFoundError):
                client.messages.create(**{**ASK, "max_tokens": 1024}, messages=weather)
            with contextlib.suppress(anthropic.BadRequestError):  # no temperature in 2026-10-21
                client.messages.create(**ASK, messages=weather, extra_body={"temperature": 0.2})
        with chromium() as context:
            page = context.new_page()
            page.goto(f"{server.base_url}/_tapedeck/ui/#streaming/tool-use")
            page.wait_for_selector("body[data-ready=true]")
            page.wait_for_selector("#cassette svg.timeline")
            page.wait_for_function("document.querySelectorAll('#entries li.entry').length >= 4")
            page.screenshot(path=str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore", "The model .* is deprecated", DeprecationWarning)
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/ui.png").absolute())
