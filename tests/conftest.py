"""Shared fixtures: a real tapedeck server on a real socket, and SDK clients pointed at it."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tapedeck.config import Settings
from tapedeck.server.runner import ServerThread
from tapedeck.shaping.timing import Timing

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


class LogLines(logging.Handler):
    """Collects the ``tapedeck`` logger's records; lets a test wait for lines to arrive."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Condition()
        self.thread: int | None = None

    def only(self, server: ServerThread) -> None:
        """Keep only ``server``'s lines: another server's may arrive late."""
        self.thread = server._thread.ident

    def emit(self, record: logging.LogRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def _found(self, pattern: str) -> list[str]:
        return [
            r.getMessage()
            for r in self.records
            if (self.thread is None or r.thread == self.thread)
            and re.search(pattern, r.getMessage())
        ]

    def matching(self, pattern: str) -> list[str]:
        with self.arrived:
            return self._found(pattern)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 5) -> list[str]:
        """The lines matching ``pattern`` once ``count`` have arrived (or on timeout)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(found := self._found(pattern)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.arrived.wait(left)
        return found


@pytest.fixture
def tapedeck_log() -> Iterator[LogLines]:
    """The ``tapedeck`` logger's lines during the test, whatever its propagation."""
    logger = logging.getLogger("tapedeck")
    handler = LogLines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
