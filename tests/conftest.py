"""Shared fixtures: a real tapedeck server on a real socket, and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tapedeck.runner import ServerThread
from tapedeck.settings import Settings
from tapedeck.timing import Timing

ROOT = Path(__file__).resolve().parent.parent
#: The type of the ``make_server`` fixture.
MakeServer = Callable[..., AbstractContextManager[ServerThread]]
CASSETTES = ROOT / "cassettes"


@contextmanager
def running(cassettes: Path = CASSETTES, **settings: Any) -> Iterator[ServerThread]:
    """Start tapedeck on a free port with ``settings`` (Settings fields); stop it after."""
    settings.setdefault("timing", Timing.parse("instant"))
    with ServerThread(Settings(cassettes=cassettes, port=0, **settings)) as server:
        yield server


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    """One server over the shipped cassettes, instant timing, shared by the session."""
    with running() as s:
        yield s


@pytest.fixture
def make_server() -> MakeServer:
    """``with make_server(tmp_path, sequence_end=...) as s:`` — a server of your own."""
    return running


@pytest.fixture
def client(server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.base_url, api_key="test-key", max_retries=0) as c:
        yield c


@pytest.fixture
async def async_client(server: ServerThread) -> Any:
    async with anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key="test-key", max_retries=0
    ) as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
