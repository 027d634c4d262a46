"""The pytest fixture's clients with whichever anthropic release is installed: the newest
(make test) and the oldest supported (make sdk-range runs this file's smoke tests in
.venv-floor). anthropic 2.x speaks httpx2, older releases httpx: the fixture must use the
SDK's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import HELLO


@pytest.mark.smoke
def test_the_sync_client_replays(tapedeck: Any) -> None:
    answer = tapedeck.client(cassette="streaming/hello").messages.create(**HELLO)
    assert answer.content[0].text


@pytest.mark.smoke
def test_the_async_client_replays(tapedeck: Any) -> None:
    async def ask() -> str:
        async with tapedeck.async_client(cassette="streaming/hello") as client:
            answer = await client.messages.create(**HELLO)
            return str(answer.content[0].text)

    assert asyncio.run(ask())
